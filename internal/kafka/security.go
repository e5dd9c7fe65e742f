package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Security is how dynaprice's Kafka clients authenticate and encrypt: TLS
// (optionally with a private CA) and SASL PLAIN or SCRAM. The zero value is
// plaintext without authentication, for a broker on a private network.
type Security struct {
	// TLS encrypts connections; CAFile, when set, is the PEM file of the
	// CAs to trust instead of the system's.
	TLS    bool
	CAFile string
	// SASL is "", "plain", "scram-sha-256" or "scram-sha-512". PLAIN sends
	// the password as is: use it only with TLS.
	SASL     string
	User     string
	Password string
}

// Opts returns the franz-go options for s, for every client of a role.
func (s Security) Opts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if s.CAFile != "" && !s.TLS {
		return nil, errors.New("kafka: a TLS CA file is given but TLS is off")
	}
	if s.TLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka: TLS CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka: TLS CA file %s holds no PEM certificate", s.CAFile)
			}
			cfg.RootCAs = pool
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	mech := strings.ToLower(s.SASL)
	if mech == "" {
		if s.User != "" {
			return nil, errors.New("kafka: a SASL user is given but no mechanism (plain, scram-sha-256, scram-sha-512)")
		}
		return opts, nil
	}
	if s.User == "" || s.Password == "" {
		return nil, fmt.Errorf("kafka: SASL %s needs a user and a password", mech)
	}
	switch mech {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka: SASL mechanism %q: want plain, scram-sha-256 or scram-sha-512", s.SASL)
	}
	return opts, nil
}
