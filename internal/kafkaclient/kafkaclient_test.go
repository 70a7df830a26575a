package kafkaclient

import (
	"context"
	"github.com/sluicelog/sluice/internal/tlsconfig"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicelog/sluice/internal/secret"
	"github.com/sluicelog/sluice/internal/testenv"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, dir, "client", "client")
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{name: "nothing", cfg: Config{}},
		{name: "tls with ca and client cert", cfg: Config{TLS: tlsOn(ca.CertFile, cert, key)}},
		{name: "tls keys without enabled", cfg: Config{TLS: tlsOnly(ca.CertFile)},
			want: "kafka.tls.enabled: is false but other kafka.tls keys are set; set kafka.tls.enabled: true"},
		{name: "missing ca file", cfg: Config{TLS: tlsOn(filepath.Join(dir, "nope.crt"), "", "")},
			want: "kafka.tls.ca_file: reading CA file: open " + filepath.Join(dir, "nope.crt") + ": no such file or directory"},
		{name: "ca file not PEM", cfg: Config{TLS: tlsOn(notPEM, "", "")},
			want: "kafka.tls.ca_file: " + notPEM + " holds no PEM certificate"},
		{name: "cert without key", cfg: Config{TLS: tlsOn("", cert, "")},
			want: "kafka.tls.cert_file: cert_file and key_file go together"},
		{name: "key does not match", cfg: Config{TLS: tlsOn("", cert, notPEM)},
			want: "kafka.tls.cert_file: cannot load the client certificate and key"},
		{name: "plain with password over tls", cfg: Config{TLS: tlsOn(ca.CertFile, "", ""), SASL: SASLConfig{Mechanism: "plain", Username: "u", Password: "pw-inline"}}},
		{name: "scram with password file, plaintext allowed", cfg: Config{SASL: SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", PasswordFile: pwFile, AllowPlaintext: true}}},
		{name: "sasl without tls", cfg: Config{SASL: SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "pw-inline"}},
			want: "kafka.tls.enabled: is false while SASL is on: the password and every record would cross the network unencrypted; use a SASL_SSL listener"},
		{name: "unknown mechanism", cfg: Config{SASL: SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "pw-inline"}},
			want: `kafka.sasl.mechanism: "GSSAPI" is not supported; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{name: "password without mechanism", cfg: Config{SASL: SASLConfig{Username: "u", Password: "pw-inline"}},
			want: "kafka.sasl.mechanism: is required with a username or password"},
		{name: "no username", cfg: Config{SASL: SASLConfig{Mechanism: "PLAIN", Password: "pw-inline"}},
			want: "kafka.sasl.username: is required with mechanism PLAIN"},
		{name: "no password", cfg: Config{SASL: SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "u"}},
			want: "kafka.sasl.password: is required with mechanism SCRAM-SHA-256"},
		{name: "password and file", cfg: Config{SASL: SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "pw-inline", PasswordFile: pwFile}},
			want: "kafka.sasl.password_file: both the value and its _file are set"},
		{name: "missing password file", cfg: Config{SASL: SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: filepath.Join(dir, "nope")}},
			want: "kafka.sasl.password_file: reading secret file: open " + filepath.Join(dir, "nope")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.SetDefaults()
			err := cfg.Validate("kafka")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := cfg.Opts(zap.NewNop()); err != nil {
					t.Fatalf("Opts: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Validate = %v\nwant prefix %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "pw-inline") || strings.Contains(err.Error(), "file-secret") {
				t.Fatalf("the error prints the password: %v", err)
			}
		})
	}
}

func tlsOn(ca, cert, key string) (c tlsConfig) {
	c = tlsOnly(ca)
	c.Enabled, c.CertFile, c.KeyFile = true, cert, key
	return c
}

func tlsOnly(ca string) (c tlsConfig) {
	c.CAFile = ca
	return c
}

// TestOptsWarns: settings that weaken security are logged loudly.
func TestOptsWarns(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	cfg := Config{TLS: tlsConfig{Enabled: true, InsecureSkipVerify: true}}
	if _, err := cfg.Opts(zap.New(core)); err != nil {
		t.Fatal(err)
	}
	cfg = Config{SASL: SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "pw-inline"}}
	if _, err := cfg.Opts(zap.New(core)); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"insecure_skip_verify", "SASL without TLS"} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning about %s in %q", want, all)
		}
	}
}

// TestCheckAgainstSecuredKafka connects to the local Kafka's SSL, SASL_SSL
// and SASL_PLAINTEXT listeners with right and wrong settings: the right ones
// pass Check, each wrong one fails it within seconds with an error naming
// the problem (and never the password); an unreachable broker is not an
// error.
func TestCheckAgainstSecuredKafka(t *testing.T) {
	stack := testenv.Start(t)
	k := stack.SecureKafka(t)
	dir := t.TempDir()
	cert, key := k.CA.Issue(t, dir, "client", "sluice-client")
	wrongCA := testenv.NewCA(t, dir, "wrong-ca")
	wrongCert, wrongKey := wrongCA.Issue(t, dir, "wrong-client", "intruder")
	scramUser := "scram-" + strings.TrimPrefix(testenv.Name(t, "u"), "u-")
	const scramPassword = "scram-pw-3f1c9a"
	k.CreateSCRAMUser(t, MechanismSCRAMSHA512, scramUser, scramPassword)
	k.CreateSCRAMUser(t, MechanismSCRAMSHA256, scramUser, scramPassword)
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(k.PlainPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsCA := tlsOn(k.CA.CertFile, "", "")
	sasl := func(mech, user string, pw secret.Value) SASLConfig {
		return SASLConfig{Mechanism: mech, Username: user, Password: pw}
	}
	// To the SASL_PLAINTEXT listener, which Validate refuses unless allowed.
	saslPlain := func(mech, user string, pw secret.Value) SASLConfig {
		c := sasl(mech, user, pw)
		c.AllowPlaintext = true
		return c
	}
	for _, tc := range []struct {
		name string
		addr string
		cfg  Config
		want string // "" when Check must pass
	}{
		{name: "ssl with client certificate", addr: k.SSL, cfg: Config{TLS: tlsOn(k.CA.CertFile, cert, key)}},
		{name: "ssl, wrong CA", addr: k.SSL, cfg: Config{TLS: tlsOn(wrongCA.CertFile, cert, key)},
			want: "x509: certificate signed by unknown authority"},
		{name: "ssl, client certificate of another CA", addr: k.SSL, cfg: Config{TLS: tlsOn(k.CA.CertFile, wrongCert, wrongKey)},
			want: "kafka TLS"},
		{name: "ssl, no client certificate", addr: k.SSL, cfg: Config{TLS: tlsCA}, want: "kafka TLS: the broker refused the handshake"},
		{name: "plaintext to the ssl listener", addr: k.SSL, cfg: Config{}, want: "is TLS missing"},
		{name: "tls to the plaintext listener", addr: stack.Broker, cfg: Config{TLS: tlsCA}, want: "kafka"},
		{name: "sasl_ssl plain, password file", addr: k.SASLSSL,
			cfg: Config{TLS: tlsCA, SASL: SASLConfig{Mechanism: MechanismPlain, Username: k.PlainUser, PasswordFile: pwFile}}},
		{name: "sasl_ssl plain, wrong password", addr: k.SASLSSL,
			cfg:  Config{TLS: tlsCA, SASL: sasl(MechanismPlain, k.PlainUser, "wrong-pw-1")},
			want: "kafka SASL authentication failed for user \"sluice\" with PLAIN"},
		{name: "sasl_ssl scram-sha-256", addr: k.SASLSSL, cfg: Config{TLS: tlsCA, SASL: sasl(MechanismSCRAMSHA256, scramUser, scramPassword)}},
		{name: "sasl_ssl scram-sha-512, wrong CA", addr: k.SASLSSL,
			cfg:  Config{TLS: tlsOn(wrongCA.CertFile, "", ""), SASL: sasl(MechanismSCRAMSHA512, scramUser, scramPassword)},
			want: "x509: certificate signed by unknown authority"},
		{name: "sasl_plaintext scram-sha-512", addr: k.SASLPlaintext, cfg: Config{SASL: saslPlain(MechanismSCRAMSHA512, scramUser, scramPassword)}},
		{name: "sasl_plaintext scram-sha-512, wrong password", addr: k.SASLPlaintext,
			cfg: Config{SASL: saslPlain(MechanismSCRAMSHA512, scramUser, "wrong-pw-2")}, want: "SASL authentication failed"},
		{name: "sasl_plaintext scram, unknown user", addr: k.SASLPlaintext,
			cfg: Config{SASL: saslPlain(MechanismSCRAMSHA256, "nobody-"+scramUser, "wrong-pw-3")}, want: "SASL authentication failed"},
		{name: "no sasl to the sasl listener", addr: k.SASLPlaintext, cfg: Config{}, want: "is SASL missing?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.SetDefaults()
			if err := cfg.Validate("kafka"); err != nil {
				t.Fatal(err)
			}
			opts, err := cfg.Opts(zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(tc.addr))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			core, logs := observer.New(zapcore.DebugLevel)
			start := time.Now()
			err = cfg.Check(context.Background(), cl, zap.New(core))
			took := time.Since(start)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if logs.Len() > 0 {
					t.Fatalf("Check logged %v", logs.All()[0].Message)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed; want an error with %q (logged: %v)", tc.want, logs.All())
			}
			t.Logf("error after %s: %v", took.Round(time.Millisecond), err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v\nwant it to contain %q", err, tc.want)
			}
			if took > 10*time.Second {
				t.Errorf("Check took %s to fail", took)
			}
			for _, pw := range []string{scramPassword, k.PlainPassword, "wrong-pw"} {
				if strings.Contains(err.Error(), pw) {
					t.Fatalf("the error prints a password: %v", err)
				}
			}
		})
	}
}

// TestCheckOutageIsNotFatal: a broker that does not answer is an outage
// the clients ride out, not a configuration error.
func TestCheckOutageIsNotFatal(t *testing.T) {
	cfg := Config{TLS: tlsConfig{Enabled: true}, SASL: SASLConfig{Mechanism: MechanismPlain, Username: "u", Password: "pw-inline"}}
	cfg.SetDefaults()
	opts, err := cfg.Opts(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers("127.0.0.1:1"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	core, logs := observer.New(zapcore.WarnLevel)
	if err := cfg.Check(context.Background(), cl, zap.New(core)); err != nil {
		t.Fatalf("Check = %v, want nil for an unreachable broker", err)
	}
	if logs.FilterMessageSnippet("kafka does not answer yet").Len() != 1 {
		t.Fatalf("logged %v, want a warning that kafka does not answer", logs.All())
	}
}

type tlsConfig = tlsconfig.Config
