package admin

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a leaf certificate for 127.0.0.1 (a server's, or a client's when client is set) and
// returns its PEM certificate and key.
func (ca *testCA) issue(t *testing.T, cn string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// writeFile writes a file by renaming a new one over it, as a certificate manager does.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tlsClient trusts the CA; cert, when given, is presented as the client certificate.
func tlsClient(ca *testCA, cert ...tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	// A new connection for every request, so that every request is a handshake with the server's
	// current certificate.
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: cert},
		DisableKeepAlives: true,
	}}
}

// peerCN returns the common name of the certificate the server presents.
func peerCN(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET %s = %d, TLS %v", url, resp.StatusCode, resp.TLS != nil)
	}
	return resp.TLS.PeerCertificates[0].Subject.CommonName
}

// TestTLS: HTTPS with the configured pair; a renewed certificate is served from the next handshake
// on, without a restart; a renewal that does not load keeps the previous pair and is logged and
// counted; plain HTTP to the TLS port is a handshake error in the configured slog format, and
// nothing reaches Go's default logger.
func TestTLS(t *testing.T) {
	var stdlog bytes.Buffer
	log.SetOutput(&stdlog)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := newTestCA(t, "test CA")
	c1, k1 := ca.issue(t, "first", false)
	writeFile(t, certFile, c1)
	writeFile(t, keyFile, k1)
	var logs syncBuffer
	s, reg := startServer(t, Options{
		TLS:    &TLSFiles{CertFile: certFile, KeyFile: keyFile},
		Token:  testToken,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	base := "https://" + s.Addr()
	client := tlsClient(ca)

	if cn := peerCN(t, client, base+"/healthz"); cn != "first" {
		t.Fatalf("served certificate %q, want first", cn)
	}
	if code, _, _ := request(t, client, base+"/v1/models", ""); code != 401 {
		t.Errorf("/v1/models over TLS without the token = %d, want 401", code)
	}
	if code, _, _ := request(t, client, base+"/v1/models", "Bearer "+testToken); code != 200 {
		t.Errorf("/v1/models over TLS with the token = %d, want 200", code)
	}

	// Renewal: the key first, then the certificate; in between the pair does not match.
	c2, k2 := ca.issue(t, "second", false)
	writeFile(t, keyFile, k2)
	if cn := peerCN(t, client, base+"/healthz"); cn != "first" {
		t.Errorf("with a key that does not match its certificate, served %q, want the previous (first)", cn)
	}
	if f := metricSum(t, reg, "streamd_admin_reload_failures_total"); f != 1 {
		t.Errorf("reload failures = %v, want 1", f)
	}
	writeFile(t, certFile, c2)
	if cn := peerCN(t, client, base+"/healthz"); cn != "second" {
		t.Errorf("after the renewal, served %q, want second", cn)
	}

	// Plain HTTP to the TLS port.
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP to the TLS port was served")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "TLS handshake error") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var handshake string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "TLS handshake error") {
			handshake = line
		}
	}
	if !strings.HasPrefix(handshake, "{") || !strings.Contains(handshake, `"component":"admin"`) || !strings.Contains(handshake, `"level":"WARN"`) {
		t.Errorf("the handshake error is not a JSON line of the configured logger with component admin: %q\nall logs:\n%s", handshake, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"admin tls reloaded"`) {
		t.Errorf("no log line for the reload:\n%s", logs.String())
	}
	if stdlog.Len() > 0 {
		t.Errorf("Go's default logger got output:\n%s", stdlog.String())
	}
}

// TestMutualTLS: with a client CA, endpoints that are not open require a client certificate signed
// by it; probes without a certificate still reach the open endpoints; a certificate from another CA
// fails the handshake.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "server CA")
	clients := newTestCA(t, "client CA")
	cert, key := ca.issue(t, "server", false)
	files := TLSFiles{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), ClientCAFile: filepath.Join(dir, "ca.crt")}
	writeFile(t, files.CertFile, cert)
	writeFile(t, files.KeyFile, key)
	writeFile(t, files.ClientCAFile, clients.pem)
	// Beyond loopback: the client CA alone is a credential.
	opts := Options{Listen: "0.0.0.0:0", TLS: &files}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		t.Fatalf("a client CA should satisfy the credential rule beyond loopback: %v", err)
	}
	s, _ := startServer(t, Options{TLS: &files})
	base := "https://" + s.Addr()

	keyPair := func(ca *testCA) tls.Certificate {
		c, k := ca.issue(t, "operator", true)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	anonymous := tlsClient(ca)
	if code, _, _ := request(t, anonymous, base+"/healthz", ""); code != 200 {
		t.Errorf("/healthz without a client certificate = %d, want 200 (probes)", code)
	}
	if code, _, body := request(t, anonymous, base+"/v1/models", ""); code != 401 {
		t.Errorf("/v1/models without a client certificate = %d %q, want 401", code, body)
	}
	if code, _, body := request(t, tlsClient(ca, keyPair(clients)), base+"/v1/models", ""); code != 200 {
		t.Errorf("/v1/models with a client certificate = %d %q, want 200", code, body)
	}
	// Go's client sends no certificate that the server's list of CAs does not name; force it, so
	// that the server itself must refuse it.
	wrong := keyPair(ca)
	forced := tlsClient(ca)
	forced.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &wrong, nil
	}
	if resp, err := forced.Get(base + "/v1/models"); err == nil {
		resp.Body.Close()
		t.Errorf("a client certificate from another CA was accepted: %d", resp.StatusCode)
	} else {
		t.Logf("a certificate from another CA: %v", err)
	}
}
