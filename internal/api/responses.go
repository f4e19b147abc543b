package api

// addResponsesRoutes adds the Responses and Conversations routes.
func (s *Server) addResponsesRoutes() {}
