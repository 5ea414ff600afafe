package graphsim

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ForeignRequest is a request that reached the foreign host (Config.ForeignNextLinks).
type ForeignRequest struct {
	At    time.Time
	Path  string
	Query string
	// Authorization is the header as received ("" = none): a token here went where it does not belong.
	Authorization string
}

// foreignHost is a second HTTPS listener of the simulator, on another host name and port: where
// nextLinks point in ForeignNextLinks mode. It serves the same Graph, so a client that follows such a
// link pages on as usual — but every request, with its Authorization header, is on record.
type foreignHost struct {
	url    string
	server *http.Server
	mu     sync.Mutex
	log    []ForeignRequest
}

// SetForeignNextLinks switches ForeignNextLinks mode on or off (starting the foreign host the first
// time it is switched on).
func (s *Server) SetForeignNextLinks(on bool) error {
	if on {
		if err := s.startForeignHost(); err != nil {
			return err
		}
	}
	s.foreignLinks.Store(on)
	return nil
}

// ForeignURL is the foreign host's base URL ("" until ForeignNextLinks mode was first switched on).
func (s *Server) ForeignURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.foreign == nil {
		return ""
	}
	return s.foreign.url
}

// ForeignRequests returns every request the foreign host received (the most recent 100k).
func (s *Server) ForeignRequests() []ForeignRequest {
	s.mu.Lock()
	f := s.foreign
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ForeignRequest(nil), f.log...)
}

// linkBase is the base URL of the nextLinks the simulator writes: its own, or the foreign host's.
func (s *Server) linkBase() string {
	switch {
	case s.foreignLinks.Load():
		return s.ForeignURL()
	case s.cfg.RelativeNextLinks:
		return ""
	}
	return s.url
}

// startForeignHost listens on a free loopback port, named "localhost" (the certificate covers it) so
// that the foreign host differs from the simulator's 127.0.0.1 in host as well as port.
func (s *Server) startForeignHost() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.foreign != nil {
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	f := &foreignHost{url: "https://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}
	graph := s.http.Handler
	f.server = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			if len(f.log) >= maxRequestLog {
				f.log = f.log[len(f.log)-maxRequestLog/2:]
			}
			f.log = append(f.log, ForeignRequest{At: time.Now(), Path: r.URL.Path, Query: r.URL.RawQuery, Authorization: r.Header.Get("Authorization")})
			f.mu.Unlock()
			graph.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.cert.tls}, MinVersion: tls.VersionTLS12},
		ErrorLog:          s.http.ErrorLog,
	}
	go func() { _ = f.server.ServeTLS(ln, "", "") }()
	s.foreign = f
	return nil
}
