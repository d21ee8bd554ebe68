package main

import (
	"fmt"
	"os"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/spot"
	"github.com/neocloud/neocloud/internal/valid"
)

// policyFile is the server's --policy file: the wipe time and spot
// policies by pool ID or GPU model. Every field is optional.
//
//	sanitize: 30m
//	spot:
//	  H100-SXM:                 # a GPU model, or a pool ID (site/MODEL)
//	    base_usd: "2.10"        # price per GPU-hour at 50% utilization, tier premium 1000
//	    buffer_permille: 20     # never sold as spot
//	    curve: [{utilization_permille: 0, multiplier_permille: 500}, {utilization_permille: 1000, multiplier_permille: 5000}]
//	    tiers: [{name: 2m, notice: 2m, premium_permille: 1000}, {name: 1h, notice: 1h, premium_permille: 1200}]
type policyFile struct {
	Sanitize time.Duration         `yaml:"sanitize"`
	Spot     map[string]spotPolicy `yaml:"spot"`
}

type spotPolicy struct {
	BaseUSD        string `yaml:"base_usd"`
	BufferPermille *int64 `yaml:"buffer_permille"`
	Curve          []struct {
		UtilizationPermille int64 `yaml:"utilization_permille"`
		MultiplierPermille  int64 `yaml:"multiplier_permille"`
	} `yaml:"curve"`
	Tiers []struct {
		Name            string        `yaml:"name"`
		Notice          time.Duration `yaml:"notice"`
		PremiumPermille int64         `yaml:"premium_permille"`
	} `yaml:"tiers"`
}

// readPolicy reads a --policy file; errors name the field and the rule.
func readPolicy(path string) (time.Duration, map[string]spot.Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, fmt.Errorf("--policy: %w", err)
	}
	return parsePolicy(data)
}

func parsePolicy(data []byte) (time.Duration, map[string]spot.Policy, error) {
	var f policyFile
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.Strict()); err != nil {
		return 0, nil, fmt.Errorf("--policy: %w", err)
	}
	var v valid.Error
	if f.Sanitize != 0 && (f.Sanitize < time.Minute || f.Sanitize > 7*24*time.Hour) {
		v.Add("sanitize", f.Sanitize.String(), "must be between 1m and 168h")
	}
	out := map[string]spot.Policy{}
	for key, sp := range f.Spot {
		field := "spot." + key
		base, err := money.Parse(sp.BaseUSD, "USD")
		if sp.BaseUSD == "" || err != nil {
			v.Add(field+".base_usd", sp.BaseUSD, "is required: a decimal USD price per GPU-hour, e.g. \"2.10\"")
			continue
		}
		pol := spot.DefaultPolicy(base)
		if sp.BufferPermille != nil {
			pol.BufferPermille = *sp.BufferPermille
		}
		if len(sp.Curve) > 0 {
			pol.Curve = nil
			for _, pt := range sp.Curve {
				pol.Curve = append(pol.Curve, spot.Point{UtilizationPermille: pt.UtilizationPermille, MultiplierPermille: pt.MultiplierPermille})
			}
		}
		if len(sp.Tiers) > 0 {
			pol.Tiers = nil
			for _, t := range sp.Tiers {
				pol.Tiers = append(pol.Tiers, spot.Tier{Name: t.Name, Notice: t.Notice, PremiumPermille: t.PremiumPermille})
			}
		}
		if err := pol.Validate(); err != nil {
			if pv, ok := err.(*valid.Error); ok {
				for _, is := range pv.Issues {
					v.Issues = append(v.Issues, valid.Issue{Field: field + "." + is.Field, Value: is.Value, Rule: is.Rule})
				}
			} else {
				v.Add(field, nil, "%v", err)
			}
			continue
		}
		out[key] = pol
	}
	if err := v.Err(); err != nil {
		return 0, nil, fmt.Errorf("--policy: %w", err)
	}
	return f.Sanitize, out, nil
}
