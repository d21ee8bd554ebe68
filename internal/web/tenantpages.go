package web

// tenantEngine is what the tenant pages (usage, SLA, quotes, spot
// requests) read and submit.
type tenantEngine interface{}

func (s *Server) tenantRoutes() {}
