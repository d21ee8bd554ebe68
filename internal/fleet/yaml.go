package fleet

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Bounds on the shape of a YAML fleet file, checked on the tokens before the
// parser runs: the YAML parser takes time quadratic in the nesting depth, in
// the keys of one block mapping and in the number of documents, so a small
// hostile file could otherwise keep it busy for minutes. A fleet file needs
// about a dozen levels and ten keys per mapping.
const (
	maxFlowDepth    = 32
	maxBlockColumn  = 200
	maxKeysPerBlock = 64
)

// decodeYAML parses data strictly into v (a pointer to a struct). Unlike
// go-yaml's own decoder it does not convert between types ("12" is not an
// integer, 1.5 is not a count), and it names the field path in its errors.
func decodeYAML(data []byte, v any) error {
	if len(data) > MaxFileBytes {
		return fmt.Errorf("fleet file: %d bytes: at most %d allowed", len(data), MaxFileBytes)
	}
	tokens := lexer.Tokenize(string(data))
	if err := checkShape(tokens); err != nil {
		return err
	}
	file, err := parser.Parse(tokens, 0)
	if err != nil {
		return syntaxError(err)
	}
	if len(file.Docs) > 1 {
		var tk *token.Token
		if d := file.Docs[1]; d.Start != nil {
			tk = d.Start
		} else if d.Body != nil {
			tk = d.Body.GetToken()
		}
		return tokenError(tk, "a fleet file holds one YAML document")
	}
	if len(file.Docs) == 0 || file.Docs[0].Body == nil {
		return nil
	}
	return decodeNode(file.Docs[0].Body, reflect.ValueOf(v).Elem(), "")
}

// syntaxError converts a go-yaml parser error to a *ParseError.
func syntaxError(err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		pe := &ParseError{Msg: ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			pe.Line, pe.Column = tk.Position.Line, tk.Position.Column
		}
		return pe
	}
	return &ParseError{Msg: err.Error()}
}

func tokenError(tk *token.Token, msg string) *ParseError {
	pe := &ParseError{Msg: msg}
	if tk != nil && tk.Position != nil {
		pe.Line, pe.Column = tk.Position.Line, tk.Position.Column
	}
	return pe
}

func nodeError(n ast.Node, field, msg string, args ...any) *ParseError {
	pe := tokenError(n.GetToken(), fmt.Sprintf(msg, args...))
	pe.Field = field
	return pe
}

// checkShape rejects token streams that would make the parser slow: more
// than one document, flow collections nested deeper than maxFlowDepth, block
// structure indented past maxBlockColumn, or a block mapping with more than
// maxKeysPerBlock keys. It tracks block mappings by the column of their keys.
func checkShape(tokens token.Tokens) error {
	type level struct{ col, keys int }
	var (
		docs, ends, flow int
		line             = -1
		stack            []level
		prev             *token.Token
	)
	for i, tk := range tokens {
		if tk.Type == token.CommentType {
			continue
		}
		leading := tk.Position.Line != line
		line = tk.Position.Line
		after := prev
		prev = tk
		switch tk.Type {
		case token.DocumentHeaderType:
			if docs++; docs > 1 {
				return tokenError(tk, "a fleet file holds one YAML document")
			}
			continue
		case token.DocumentEndType:
			if ends++; ends > 1 {
				return tokenError(tk, "a fleet file holds one YAML document")
			}
			continue
		case token.SequenceStartType, token.MappingStartType:
			if flow++; flow > maxFlowDepth {
				return tokenError(tk, fmt.Sprintf("flow collections nested more than %d deep", maxFlowDepth))
			}
			continue
		case token.SequenceEndType, token.MappingEndType:
			if flow > 0 {
				flow--
			}
			continue
		}
		if flow > 0 {
			continue
		}
		col := tk.Position.Column
		entry := tk.Type == token.SequenceEntryType || tk.Type == token.MappingKeyType
		if (leading || entry) && col > maxBlockColumn {
			return tokenError(tk, fmt.Sprintf("block structure indented past column %d", maxBlockColumn))
		}
		if entry {
			for len(stack) > 0 && stack[len(stack)-1].col > col {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		isKey := i+1 < len(tokens) && tokens[i+1].Type == token.MappingValueType &&
			(leading || after != nil && after.Type == token.SequenceEntryType)
		if !isKey {
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].col > col {
			stack = stack[:len(stack)-1]
		}
		if n := len(stack); n > 0 && stack[n-1].col == col {
			if stack[n-1].keys++; stack[n-1].keys > maxKeysPerBlock {
				return tokenError(tk, fmt.Sprintf("a mapping with more than %d keys", maxKeysPerBlock))
			}
			continue
		}
		stack = append(stack, level{col: col, keys: 1})
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeNode decodes n into v, whose kinds are those of Spec's fields:
// struct, slice, pointer, string, int and float64. A null leaves v zero.
func decodeNode(n ast.Node, v reflect.Value, path string) error {
	if n == nil {
		return nil
	}
	switch n := n.(type) {
	case *ast.AnchorNode, *ast.AliasNode:
		return nodeError(n, path, "anchors and aliases are not supported")
	case *ast.TagNode:
		return nodeError(n, path, "tags are not supported")
	case *ast.NullNode, *ast.CommentGroupNode:
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := decodeNode(n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		return decodeStruct(n, v, path)
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			return nodeError(n, path, "want a list, got %s", describe(n))
		}
		if len(seq.Values) == 0 {
			return nil
		}
		s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		for i, item := range seq.Values {
			if err := decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.String:
		switch n := n.(type) {
		case *ast.StringNode:
			v.SetString(n.Value)
			return nil
		case *ast.LiteralNode:
			v.SetString(n.Value.Value)
			return nil
		}
		return nodeError(n, path, "want a string, got %s (quote it)", describe(n))
	case reflect.Int:
		in, ok := n.(*ast.IntegerNode)
		if !ok {
			return nodeError(n, path, "want an integer, got %s", describe(n))
		}
		x, err := strconv.Atoi(in.GetToken().Value)
		if err != nil {
			return nodeError(n, path, "want a decimal integer in range, got %s", describe(n))
		}
		v.SetInt(int64(x))
		return nil
	case reflect.Float64:
		var text string
		switch n := n.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
			text = n.GetToken().Value
		case *ast.StringNode:
			if n.Token.Type == token.StringType { // plain, e.g. 1e3
				text = n.Value
			}
		}
		x, err := parseDecimal(text)
		if err != nil {
			return nodeError(n, path, "want a finite decimal number, got %s", describe(n))
		}
		v.SetFloat(x)
		return nil
	}
	return nodeError(n, path, "cannot decode into %s", v.Type())
}

// parseDecimal parses a decimal number; unlike strconv.ParseFloat alone it
// refuses "inf", "nan", hexadecimal and out-of-range values.
func parseDecimal(s string) (float64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789+-.eE") != "" {
		return 0, fmt.Errorf("not a decimal number: %q", s)
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return x, nil
}

func decodeStruct(n ast.Node, v reflect.Value, path string) error {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		return nodeError(n, path, "want a mapping, got %s", describe(n))
	}
	t := v.Type()
	seen := make([]bool, t.NumField())
	for _, kv := range pairs {
		var key string
		switch k := kv.Key.(type) {
		case *ast.StringNode:
			key = k.Value
		case *ast.MappingKeyNode, *ast.MergeKeyNode:
			return nodeError(k, path, "complex and merge keys are not supported")
		default:
			key = k.GetToken().Value
		}
		i := fieldIndex(t, key)
		if i < 0 {
			return nodeError(kv.Key, path, "unknown field %q: want one of %s", key, strings.Join(fieldNames(t), ", "))
		}
		if seen[i] {
			return nodeError(kv.Key, path, "field %q given twice", key)
		}
		seen[i] = true
		if err := decodeNode(kv.Value, v.Field(i), joinPath(path, key)); err != nil {
			return err
		}
	}
	return nil
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func fieldIndex(t reflect.Type, key string) int {
	for i := range t.NumField() {
		if tagName(t.Field(i)) == key {
			return i
		}
	}
	return -1
}

func fieldNames(t reflect.Type) []string {
	names := make([]string, t.NumField())
	for i := range names {
		names[i] = tagName(t.Field(i))
	}
	return names
}

// describe names a node's kind and shows its text, shortened, for errors.
func describe(n ast.Node) string {
	var kind string
	switch n := n.(type) {
	case *ast.StringNode:
		if n.Token.Type == token.StringType {
			kind = "plain string"
		} else {
			kind = "quoted string"
		}
	case *ast.IntegerNode:
		kind = "integer"
	case *ast.FloatNode:
		kind = "float"
	case *ast.BoolNode:
		kind = "boolean"
	case *ast.InfinityNode:
		kind = "infinity"
	case *ast.NanNode:
		kind = "NaN"
	case *ast.LiteralNode:
		kind = "block string"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	default:
		return n.Type().String()
	}
	text := n.GetToken().Value
	if len(text) > 40 {
		text = text[:40] + "..."
	}
	return kind + " " + strconv.Quote(text)
}

// yamlNode is the tree encodeYAML renders: a scalar (already quoted), a
// mapping (block, or flow for the types isFlowType names) or a sequence.
type yamlNode struct {
	kind   yamlKind
	scalar string
	keys   []string
	vals   []*yamlNode
	items  []*yamlNode
	flow   bool
}

type yamlKind int

const (
	yamlScalar yamlKind = iota
	yamlMapping
	yamlSequence
)

// encodeYAML renders a Spec by walking its fields in declaration order and
// leaving out zero values (nil pointers, empty strings and lists, zero
// numbers not behind a pointer), which Parse reads back as the same values.
func encodeYAML(s *Spec) ([]byte, error) {
	root, err := toYAMLNode(reflect.ValueOf(s).Elem(), false, false)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	renderMapping(&b, root, 0, "")
	return []byte(b.String()), nil
}

// isFlowType reports whether t renders as a one-line flow mapping: it holds
// only scalars.
func isFlowType(t reflect.Type) bool {
	return t == reflect.TypeFor[PowerDomainSpec]() || t == reflect.TypeFor[NodeSpec]()
}

// toYAMLNode converts v; it returns nil for a value to leave out. flow tells
// that the value sits in a flow mapping; explicit that it is behind a
// pointer, so that a zero must be written.
func toYAMLNode(v reflect.Value, flow, explicit bool) (*yamlNode, error) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return toYAMLNode(v.Elem(), flow, true)
	case reflect.Struct:
		n := &yamlNode{kind: yamlMapping, flow: isFlowType(v.Type())}
		for i := range v.NumField() {
			name := tagName(v.Type().Field(i))
			c, err := toYAMLNode(v.Field(i), n.flow, false)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if c != nil {
				n.keys = append(n.keys, name)
				n.vals = append(n.vals, c)
			}
		}
		return n, nil
	case reflect.Slice:
		if v.Len() == 0 {
			return nil, nil
		}
		n := &yamlNode{kind: yamlSequence}
		for i := range v.Len() {
			c, err := toYAMLNode(v.Index(i), false, true)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			n.items = append(n.items, c)
		}
		return n, nil
	case reflect.String:
		if v.Len() == 0 && !explicit {
			return nil, nil
		}
		return &yamlNode{scalar: quoteYAML(v.String(), flow)}, nil
	case reflect.Int:
		return &yamlNode{scalar: strconv.FormatInt(v.Int(), 10)}, nil
	case reflect.Float64:
		x := v.Float()
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a finite number", x)
		}
		if x == 0 && !explicit {
			return nil, nil
		}
		return &yamlNode{scalar: formatDecimal(x)}, nil
	}
	return nil, fmt.Errorf("cannot encode %s", v.Type())
}

// formatDecimal formats x in the fewest digits that parse back to x, without
// an exponent unless the number is very large or small.
func formatDecimal(x float64) string {
	if a := math.Abs(x); a >= 1e-6 && a < 1e21 {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

func indent(b *strings.Builder, n int) {
	for range n {
		b.WriteByte(' ')
	}
}

// renderMapping writes a block mapping whose keys start at column ind; the
// first line starts with first instead of the indentation (for "- ").
func renderMapping(b *strings.Builder, m *yamlNode, ind int, first string) {
	for i, key := range m.keys {
		if i == 0 && first != "" {
			b.WriteString(first)
		} else {
			indent(b, ind)
		}
		b.WriteString(key)
		b.WriteByte(':')
		switch v := m.vals[i]; {
		case v.kind == yamlSequence:
			b.WriteByte('\n')
			renderSequence(b, v, ind+2)
		case v.kind == yamlMapping && !v.flow:
			b.WriteByte('\n')
			renderMapping(b, v, ind+2, "")
		default:
			b.WriteByte(' ')
			renderInline(b, v)
			b.WriteByte('\n')
		}
	}
}

func renderSequence(b *strings.Builder, s *yamlNode, ind int) {
	for _, item := range s.items {
		if item.kind == yamlMapping && !item.flow && len(item.keys) > 0 {
			var first strings.Builder
			indent(&first, ind)
			first.WriteString("- ")
			renderMapping(b, item, ind+2, first.String())
			continue
		}
		indent(b, ind)
		b.WriteString("- ")
		renderInline(b, item)
		b.WriteByte('\n')
	}
}

// renderInline writes a scalar, or a mapping of scalars in flow style.
func renderInline(b *strings.Builder, n *yamlNode) {
	if n.kind == yamlScalar {
		b.WriteString(n.scalar)
		return
	}
	b.WriteByte('{')
	for i, key := range n.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(key)
		b.WriteString(": ")
		b.WriteString(n.vals[i].scalar)
	}
	b.WriteByte('}')
}

// quoteYAML returns s as a YAML scalar: plain when it is unmistakably a
// string (a letter first, then letters, digits and . _ / -; in block context
// also the braces of a name pattern and a colon before a digit), and
// double-quoted otherwise, so that "1e3", "true", "null" or "{n}" stay
// strings.
func quoteYAML(s string, flow bool) string {
	if plainYAML(s, flow) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0xfeff:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

func plainYAML(s string, flow bool) bool {
	if s == "" {
		return false
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null":
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i == 0:
			return false
		case c >= '0' && c <= '9', c == '.', c == '/', c == '-':
		case !flow && (c == '{' || c == '}'):
		case !flow && c == ':' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
		default:
			return false
		}
	}
	return true
}
