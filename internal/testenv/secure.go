package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// SecureKafka is the local Kafka's secured listeners, which
// deploy/local/stack.sh adds next to PLAINTEXT: SSL (a client certificate
// signed by the stack's CA is required), SASL_SSL and SASL_PLAINTEXT (PLAIN
// with user "sluice", SCRAM-SHA-256 and SCRAM-SHA-512 with users made by
// CreateSCRAMUser).
type SecureKafka struct {
	SSL, SASLSSL, SASLPlaintext string // host:port
	// CA signed the broker's certificate, and signs client certificates.
	CA *CA
	// PlainUser and PlainPassword are the SASL PLAIN user.
	PlainUser, PlainPassword string

	stack *Stack
}

// SecureKafka returns the secured listeners. It fails the test with the fix
// when the running broker was started without them (by an older stack.sh).
func (s *Stack) SecureKafka(t testing.TB) *SecureKafka {
	t.Helper()
	host, portText, err := net.SplitHostPort(s.Broker)
	if err != nil {
		t.Fatalf("broker address %q: %v", s.Broker, err)
	}
	port, _ := strconv.Atoi(portText)
	dir, err := LocalDir()
	if err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "tls")
	ca, err := LoadCA(filepath.Join(tlsDir, "ca.crt"), filepath.Join(tlsDir, "ca.key"))
	if err != nil {
		t.Fatalf("the local Kafka's test CA (made by deploy/local/stack.sh in %s): %v", tlsDir, err)
	}
	pw, err := os.ReadFile(filepath.Join(tlsDir, "plain.password"))
	if err != nil {
		t.Fatalf("the local Kafka's SASL PLAIN password: %v", err)
	}
	k := &SecureKafka{
		SSL:           net.JoinHostPort(host, strconv.Itoa(port+4)),
		SASLSSL:       net.JoinHostPort(host, strconv.Itoa(port+5)),
		SASLPlaintext: net.JoinHostPort(host, strconv.Itoa(port+6)),
		CA:            ca, PlainUser: "sluice", PlainPassword: strings.TrimSpace(string(pw)), stack: s,
	}
	for _, addr := range []string{k.SSL, k.SASLSSL, k.SASLPlaintext} {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("the local Kafka has no secured listener on %s (%v): it was started by an older stack.sh; "+
				"restart it with deploy/local/stack.sh kafka-stop && deploy/local/stack.sh kafka-start", addr, err)
		}
		c.Close()
	}
	return k
}

// CreateSCRAMUser gives user the password for mechanism (SCRAM-SHA-256 or
// SCRAM-SHA-512) through the PLAINTEXT listener, and removes it when the
// test ends.
func (k *SecureKafka) CreateSCRAMUser(t testing.TB, mechanism, user, password string) {
	t.Helper()
	mech := kadm.ScramSha256
	if mechanism == "SCRAM-SHA-512" {
		mech = kadm.ScramSha512
	}
	adm := kadm.NewClient(k.stack.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: mech, Iterations: 4096, Password: password}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("creating SCRAM user %s: %v", user, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(k.stack.Client(t)).AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: user, Mechanism: mech}}, nil)
	})
}

// CA is a certificate authority for tests: the stack's (LoadCA) or a
// throwaway one (NewCA), e.g. a wrong CA that nothing trusts.
type CA struct {
	Cert     *x509.Certificate
	Key      any // crypto.Signer
	CertFile string
}

// NewCA makes a CA and writes its certificate to dir/name.crt.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, name+".crt")
	writePEM(t, file, "CERTIFICATE", der)
	return &CA{Cert: cert, Key: key, CertFile: file}
}

// LoadCA reads a PEM certificate and its PEM (PKCS#8, PKCS#1 or EC) key.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, errors.New("no PEM block in " + certFile + " or " + keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
				return nil, fmt.Errorf("parsing %s: %w", keyFile, err)
			}
		}
	}
	return &CA{Cert: cert, Key: key, CertFile: certFile}, nil
}

// Issue signs a certificate for cn, valid for 127.0.0.1 and localhost as
// a server and as a client, and writes dir/name.crt and dir/name.key.
func (ca *CA) Issue(t testing.TB, dir, name, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
