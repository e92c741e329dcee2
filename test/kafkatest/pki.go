package kafkatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a certificate authority made for one test, with a broker certificate for 127.0.0.1 and
// localhost and a client certificate, all written as PEM files in a temporary directory: what a
// test of TLS and mutual TLS needs on both sides.
type PKI struct {
	CAFile                        string // the CA's certificate
	CertFile, KeyFile             string // the client's certificate and key
	ServerCertFile, ServerKeyFile string // the broker's
	pool                          *x509.CertPool
	server                        tls.Certificate
}

// NewPKI makes a CA and its two certificates, valid for an hour.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "streamd test CA")
	srv, srvKey := newCert(t, ca, caKey, "broker")
	cli, cliKey := newCert(t, ca, caKey, "streamd")
	p := &PKI{
		CAFile:         writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw),
		ServerCertFile: writePEM(t, dir, "broker.pem", "CERTIFICATE", srv.Raw),
		ServerKeyFile:  writePEM(t, dir, "broker.key", "PRIVATE KEY", marshalKey(t, srvKey)),
		CertFile:       writePEM(t, dir, "client.pem", "CERTIFICATE", cli.Raw),
		KeyFile:        writePEM(t, dir, "client.key", "PRIVATE KEY", marshalKey(t, cliKey)),
		pool:           x509.NewCertPool(),
		server:         tls.Certificate{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey, Leaf: srv},
	}
	p.pool.AddCert(ca)
	return p
}

// ServerTLS is the broker's TLS config (kfake.TLS); with requireClientCert it demands a client
// certificate signed by the CA: mutual TLS.
func (p *PKI) ServerTLS(requireClientCert bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if requireClientCert {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
	}
	return c
}

// ClientTLS is a client's TLS config that trusts the CA, with the client certificate when withCert.
func (p *PKI) ClientTLS(t testing.TB, withCert bool) *tls.Config {
	t.Helper()
	c := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if withCert {
		cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

func newCert(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func marshalKey(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t testing.TB, dir, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// UnsecuredJWT returns an unsigned JWT (alg "none") with the given claims: the token Kafka's
// unsecured OAUTHBEARER validator accepts, which needs sub, iat and exp (in seconds) and, when the
// listener requires one, scope.
func UnsecuredJWT(claims map[string]any) string {
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		panic("kafkatest: claims do not marshal: " + err.Error())
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "."
}
