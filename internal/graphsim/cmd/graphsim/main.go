// Command graphsim runs the Microsoft Graph simulator standalone, for `make run`, demos and manual
// testing: `go run ./internal/graphsim/cmd/graphsim -ca-out /tmp/graphsim-ca.pem`.
package main

import (
	_ "embed"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
)

//go:embed demo.yaml
var demoConfig []byte

func main() {
	configPath := flag.String("config", "", "simulator YAML config (default: the embedded demo: two tenants, every dataset)")
	addr := flag.String("addr", "", "listen address, overriding the config's `addr`")
	caOut := flag.String("ca-out", "", "write the generated certificate (PEM) here, for the collector's `tls.ca_file`")
	anchor := flag.String("anchor", "", "RFC 3339 instant between history and live records, overriding the config's `anchor` (default: now); "+
		"the same anchor serves the same records again after a restart")
	flag.Parse()

	var cfg graphsim.Config
	var err error
	if *configPath != "" {
		cfg, err = graphsim.LoadConfig(*configPath)
	} else {
		err = yaml.Unmarshal(demoConfig, &cfg)
	}
	if err != nil {
		log.Fatalf("graphsim: %v", err)
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	if *anchor != "" {
		if cfg.Anchor, err = time.Parse(time.RFC3339Nano, *anchor); err != nil {
			log.Fatalf("graphsim: -anchor: %v", err)
		}
	}
	cfg.ErrorLog = log.New(os.Stderr, "graphsim: ", log.LstdFlags) // TLS handshakes of clients that do not trust it, ...
	sim, err := graphsim.Start(cfg)
	if err != nil {
		log.Fatalf("graphsim: %v", err)
	}
	if *caOut != "" {
		if err := sim.WriteCACert(*caOut); err != nil {
			log.Fatalf("graphsim: %v", err)
		}
	}
	fmt.Printf("graphsim: serving Graph and the token endpoint on %s (certificate: %s; managed identity endpoint: %s)\n",
		sim.URL(), *caOut, sim.ManagedIdentityEndpoint())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	st := sim.Stats()
	fmt.Printf("graphsim: served %d Graph requests (%d throttled, %d Retry-After violations), %d tokens\n",
		st.GraphRequests, st.Throttled, st.Violations, st.TokensIssued)
	_ = sim.Close()
}
