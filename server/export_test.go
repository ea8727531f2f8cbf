package server

// UnfairGrants returns how many inference slots went to a tenant that
// already held more than a tenant left waiting.
func UnfairGrants(s *Server) uint64 { return s.sched.unfairGrants() }
