package admin

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// TLSFiles are the PEM files of the admin server's TLS. They are read at Start and again when one of
// them changes, at the next handshake: a renewed certificate (cert-manager, a rotated Secret) takes
// effect without a restart, and a pair that does not load keeps the previous one (logged, counted in
// streamd_admin_reload_failures_total{what="tls"}).
type TLSFiles struct {
	// CertFile is the server's certificate chain, KeyFile its private key. Both are required.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the server ask for a client certificate and verify one that is
	// given against these CAs; every endpoint but Options.OpenEndpoints then requires a verified
	// one (mutual TLS). Probes, which present no certificate, reach the open endpoints.
	ClientCAFile string
}

// tlsState is what one load of TLSFiles gives.
type tlsState struct {
	cert      tls.Certificate
	clientCAs *x509.CertPool // nil: no client certificates asked for
}

func newTLSFiles(f TLSFiles, log *slog.Logger, failures prometheus.Counter) *reloader[*tlsState] {
	paths := []string{f.CertFile, f.KeyFile}
	if f.ClientCAFile != "" {
		paths = append(paths, f.ClientCAFile)
	}
	return &reloader[*tlsState]{what: "tls", paths: paths, log: log, failures: failures, parse: f.load}
}

func (f TLSFiles) load() (*tlsState, error) {
	certPEM, err := readFile(f.CertFile, maxPEMBytes)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(f.KeyFile, maxPEMBytes)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
	}
	st := &tlsState{cert: cert}
	if f.ClientCAFile != "" {
		pem, err := readFile(f.ClientCAFile, maxPEMBytes)
		if err != nil {
			return nil, err
		}
		st.clientCAs = x509.NewCertPool()
		if !st.clientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: %w", f.ClientCAFile, errNoCerts)
		}
	}
	return st, nil
}

var errNoCerts = errors.New("no PEM certificate in the file")

// maxPEMBytes bounds each TLS file: a chain or a bundle of CAs is a few kilobytes to a few
// hundred.
const maxPEMBytes = 4 << 20

// serverConfig returns the tls.Config of the listener: each handshake takes the files' current
// contents. Only HTTP/1.1 is offered: the admin endpoints gain nothing from HTTP/2, and one request
// per connection at a time is what the connection cap counts.
func serverConfig(files *reloader[*tlsState]) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		st := files.current()
		c := &tls.Config{
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
			Certificates: []tls.Certificate{st.cert},
		}
		if st.clientCAs != nil {
			// Verified when given, required by the authenticator on every endpoint that is not
			// open: probes without a certificate still reach /healthz and /readyz.
			c.ClientAuth, c.ClientCAs = tls.VerifyClientCertIfGiven, st.clientCAs
		}
		return c, nil
	}
	return base
}
