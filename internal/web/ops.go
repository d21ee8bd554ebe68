package web

// opsEngine is what the operator pages (sellable capacity, revenue, live
// events, tenants and keys) read.
type opsEngine interface{}

func (s *Server) opsRoutes() {}
