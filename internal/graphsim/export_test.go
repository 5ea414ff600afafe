package graphsim

import (
	"testing"
	"time"
)

// IssueToken signs an access token for any audience, as no token endpoint of the simulator would: for
// tests of what Graph accepts.
func IssueToken(t *testing.T, s *Server, tenantID, appID, audience string) string {
	t.Helper()
	tok, err := s.tokens.issue(tenantID, appID, audience, []string{"AuditLog.Read.All"}, s.tokenGeneration(tenantID), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
