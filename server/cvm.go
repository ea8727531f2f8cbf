package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/google/go-configfs-tsm/configfs/linuxtsm"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/pccs"
	"github.com/blindfold-ai/blindfold/attest/snp/snpkey"
	"github.com/blindfold-ai/blindfold/attest/tsm"
)

// tee settings of confidential VMs.
const (
	// TEETDX is the tee setting of an Intel TDX guest: quotes through
	// configfs-tsm, collateral from pccs_url.
	TEETDX = "tdx"
	// TEESNP is the tee setting of an AMD SEV-SNP guest: reports and the
	// VCEK certificate table through configfs-tsm.
	TEESNP = "sev-snp"
)

// pccsCache returns the PCCS cache that the configuration names.
func pccsCache(cfg Config, log *slog.Logger) *pccs.Cache {
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.PCCSInsecureSkipVerify {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
		hc.Transport = tr
		log.Warn("pccs_insecure_skip_verify: the PCCS's TLS certificate is not checked; collateral is still verified by clients, but a network attacker can deny service", "pccs_url", cfg.PCCSURL)
	}
	c := &pccs.Client{BaseURL: cfg.PCCSURL, RootCACRLURL: cfg.PCCSRootCACRLURL, HTTP: hc}
	if name, value, err := cfg.pccsHeader(); err == nil && name != "" {
		c.Header = http.Header{name: {value}}
	}
	return &pccs.Cache{Client: c, OnFetch: ObserveCollateralFetch}
}

// pccsHeader parses pccs_header ("Name: value"); "" gives "".
func (c *Config) pccsHeader() (name, value string, err error) {
	if c.PCCSHeader == "" {
		return "", "", nil
	}
	n, v, ok := strings.Cut(c.PCCSHeader, ":")
	n, v = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(n)), strings.TrimSpace(v)
	if !ok || n == "" || strings.ContainsAny(n, " \t\r\n") || strings.ContainsAny(v, "\r\n") {
		return "", "", fmt.Errorf("%q is not a header of the form \"Name: value\"", c.PCCSHeader)
	}
	return n, v, nil
}

// newCVMIssuer opens configfs-tsm and checks that its provider is the
// platform the configuration names.
func newCVMIssuer(cfg Config, log *slog.Logger) (attest.Issuer, error) {
	client, err := linuxtsm.MakeClient()
	if err != nil {
		return nil, fmt.Errorf("server: tee = %q: configfs-tsm: %w (is this a confidential VM with /sys/kernel/config/tsm/report?)", cfg.TEE, err)
	}
	var source tsm.CollateralSource
	if cfg.TEE == TEETDX {
		source = pccsCache(cfg, log)
	}
	iss, err := tsm.New(client, source)
	if err != nil {
		return nil, fmt.Errorf("server: tee = %q: %w", cfg.TEE, err)
	}
	want := map[string]string{TEETDX: attest.TypeTDX, TEESNP: attest.TypeSNP}[cfg.TEE]
	if iss.Type() != want {
		return nil, fmt.Errorf("server: tee = %q, but configfs-tsm reports %s evidence", cfg.TEE, iss.Type())
	}
	return iss, nil
}

// errNoCVMSealingKey is returned by cvmSealingKey on TDX without a key.
var errNoCVMSealingKey = errors.New("a TDX guest has no sealing key of its own, and no sealing_key_file is set (a key that your key broker releases to this TD after verifying its quote; see docs/cvm.md); without one no model is saved, so that none is ever sealed under a key the host could know")

// cvmSealingKey returns the sealing key of a confidential VM that has no
// sealing_key_file: SEV-SNP's MSG_KEY_REQ derived key; on TDX there is
// none (errNoCVMSealingKey), and the server refuses to save models.
func (s *Server) cvmSealingKey() ([]byte, error) {
	if s.cfg.TEE != TEESNP {
		return nil, fmt.Errorf("server: %w", errNoCVMSealingKey)
	}
	d, err := snpkey.OpenDevice()
	if err != nil {
		return nil, fmt.Errorf("server: SEV-SNP sealing key: %w (or set sealing_key_file to a key from your key broker)", err)
	}
	defer d.Close()
	key, err := snpkey.SealingKey(d, 0)
	if err != nil {
		return nil, fmt.Errorf("server: SEV-SNP sealing key: %w", err)
	}
	s.log.Info("saved models are sealed under the SEV-SNP derived key (VCEK root, launch measurement, guest policy)")
	return key, nil
}
