package main

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/ear"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/policy"
)

// Output formats of attest and proof verify.
const (
	formatText   = "text"
	formatEAR    = "ear"
	formatEARJWT = "ear-jwt"
)

// maxKeyFile bounds the size of an --ear-key file.
const maxKeyFile = 64 << 10

// earFlags are the output flags of the commands that can write an EAT
// Attestation Result.
type earFlags struct {
	format *string
	key    *string
	signer *ecdsa.PrivateKey
}

const earFlagsHelp = `--format ear prints, instead of the text, an EAT Attestation Result
(IETF RATS EAR, JSON claims set; docs/ear.md): one appraisal per component
with its status (affirming, warning, contraindicated, or none for a test
root or simulation). --format ear-jwt, or --ear-key with --format ear,
prints it as a JWT signed with ES256 by the ECDSA P-256 key in --ear-key
(PEM). When the verifier refuses the evidence, the EAR (contraindicated)
is printed as well, and the command still fails.`

func addEARFlags(fs *flag.FlagSet) *earFlags {
	return &earFlags{
		format: fs.String("format", formatText, "output `FORMAT`: text, ear (EAT Attestation Result, JSON) or ear-jwt (signed with --ear-key)"),
		key:    fs.String("ear-key", "", "sign the EAR as a JWT (ES256) with the ECDSA P-256 private key `FILE` (PEM)"),
	}
}

// check checks the flags and reads the signing key.
func (f *earFlags) check() error {
	switch *f.format {
	case formatText:
		if *f.key != "" {
			return usageErrorf("--ear-key signs an EAR; add --format ear-jwt")
		}
		return nil
	case formatEAR, formatEARJWT:
	default:
		return usageErrorf("--format %q: want text, ear or ear-jwt", *f.format)
	}
	if *f.key == "" {
		if *f.format == formatEARJWT {
			return usageErrorf("--format ear-jwt needs --ear-key FILE (an ECDSA P-256 private key, PEM)")
		}
		return nil
	}
	b, err := readSmallFile(*f.key, maxKeyFile)
	if err != nil {
		return withCode(exitIO, fmt.Errorf("--ear-key: %w", err))
	}
	if f.signer, err = ear.ParseSigningKey(b); err != nil {
		return withCode(exitIO, fmt.Errorf("--ear-key %s: %w", *f.key, err))
	}
	return nil
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// enabled reports whether an EAR is to be printed instead of the text.
func (f *earFlags) enabled() bool { return *f.format != formatText }

// options returns the EAR options of this client.
func (f *earFlags) options(o ear.Options) ear.Options {
	o.Verifier = ear.VerifierID{Developer: ear.DefaultDeveloper, Build: "blindfold " + client.Version}
	return o
}

// write prints r as JSON, or as a signed JWT when a key was given.
func (f *earFlags) write(w io.Writer, r *ear.Result) error {
	if f.signer != nil {
		tok, err := ear.Sign(r, f.signer)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, tok)
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeRefusal prints the EAR of evidence that the verifier refused, when
// err is such a refusal, and returns err.
func (f *earFlags) writeRefusal(w io.Writer, err error, o ear.Options) error {
	var ae *attest.Error
	if f.enabled() && errors.As(err, &ae) {
		if werr := f.write(w, ear.Refused(err, f.options(o))); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

// writeAttestationEAR prints the EAR of the evidence verified at
// connection.
func writeAttestationEAR(w io.Writer, f *earFlags, v *attest.Verified, p *policy.Policy, nonce []byte) error {
	if v == nil {
		return errors.New("no hardware evidence was verified")
	}
	r, err := ear.FromVerified(v, f.options(ear.Options{Policy: p, Nonce: nonce}))
	if err != nil {
		return err
	}
	return f.write(w, r)
}
