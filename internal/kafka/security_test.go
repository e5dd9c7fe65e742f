package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// selfSigned returns a TLS server config for 127.0.0.1 and the PEM file of
// its certificate, to trust as a CA.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, ca
}

// TestSecurityTLSAndSASL: a producer configured with Security reaches a
// broker that requires TLS and SCRAM or PLAIN; a wrong password or a
// missing CA does not get in.
func TestSecurityTLSAndSASL(t *testing.T) {
	srvTLS, ca := selfSigned(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.TLS(srvTLS),
		kfake.Superuser("SCRAM-SHA-256", "dp", "scram-secret"), kfake.Superuser("PLAIN", "dpplain", "plain-secret"),
		kfake.SeedTopics(1, DefaultTopics().Events))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ping := func(s Security) error {
		opts, err := s.Opts()
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(DefaultTopics().Events),
			kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(3 * time.Second)}, opts...)...)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	}
	for _, s := range []Security{
		{TLS: true, CAFile: ca, SASL: "scram-sha-256", User: "dp", Password: "scram-secret"},
		{TLS: true, CAFile: ca, SASL: "PLAIN", User: "dpplain", Password: "plain-secret"},
	} {
		if err := ping(s); err != nil {
			t.Errorf("%s over TLS: %v", s.SASL, err)
		}
	}
	for what, s := range map[string]Security{
		"a wrong password": {TLS: true, CAFile: ca, SASL: "scram-sha-256", User: "dp", Password: "guess"},
		"no SASL":          {TLS: true, CAFile: ca},
		"an untrusted CA":  {TLS: true, SASL: "scram-sha-256", User: "dp", Password: "scram-secret"},
	} {
		if err := ping(s); err == nil {
			t.Errorf("%s got in", what)
		}
	}
	for what, s := range map[string]Security{
		"a CA without TLS":      {CAFile: ca},
		"a user without SASL":   {User: "dp"},
		"SASL without password": {SASL: "plain", User: "dp"},
		"an unknown mechanism":  {SASL: "gssapi", User: "dp", Password: "p"},
	} {
		if _, err := s.Opts(); err == nil {
			t.Errorf("%s was accepted", what)
		}
	}
}
