package snptest

import (
	"fmt"
	"os"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
)

// TSM returns a fake configfs-tsm tree (go-configfs-tsm's faketsm) whose
// report entries answer as an SEV-SNP guest would: provider "sev_guest",
// outblob a report over the inblob signed by p's VCEK (with the fields of
// base, or DefaultReport when nil), auxblob p's certificate table.
func (p *PKI) TSM(base *Report) configfsi.Client {
	sub := faketsm.Report611(0)
	fallback := sub.ReadAttr
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte("sev_guest\n"), nil
		case "auxblob":
			return p.CertTable(), nil
		case "outblob":
			in, ok := e.InAttrs["inblob"]
			if !ok || len(in.Value) > 64 {
				return nil, fmt.Errorf("snptest: inblob of %d bytes", len(in.Value))
			}
			r := DefaultReport()
			if base != nil {
				c := *base
				r = &c
			}
			r.ReportData = [64]byte{}
			copy(r.ReportData[:], in.Value)
			return p.Sign(r)
		}
		if fallback == nil {
			return nil, os.ErrNotExist
		}
		return fallback(e, attr)
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}
