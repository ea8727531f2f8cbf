package sgx

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// tcbInfo is the parsed body of a PCS TCB info response (SGX, version 2 or 3).
type tcbInfo struct {
	Version                 int
	IssueDate               time.Time
	NextUpdate              time.Time
	FMSPC                   [6]byte
	PCEID                   [2]byte
	TCBEvaluationDataNumber uint32
	Levels                  []tcbLevel
}

type tcbLevel struct {
	Components  [16]uint8
	PCESVN      uint16
	TCBDate     time.Time
	Status      TCBStatus
	AdvisoryIDs []string
}

// qeIdentity is the parsed body of a PCS enclave identity response (QE,
// version 2).
type qeIdentity struct {
	Version                 int
	IssueDate               time.Time
	NextUpdate              time.Time
	TCBEvaluationDataNumber uint32
	MiscSelect              [4]byte
	MiscSelectMask          [4]byte
	Attributes              [16]byte
	AttributesMask          [16]byte
	MRSIGNER                [32]byte
	ISVProdID               uint16
	Levels                  []qeLevel
}

type qeLevel struct {
	ISVSVN      uint16
	TCBDate     time.Time
	Status      TCBStatus
	AdvisoryIDs []string
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time", field, s)
	}
	return t, nil
}

func hexField(field, s string, out []byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(out) {
		return fmt.Errorf("%s %q is not %d bytes of hex", field, s, len(out))
	}
	copy(out, b)
	return nil
}

func intField(field string, p *int, max int) (int, error) {
	if p == nil {
		return 0, fmt.Errorf("%s missing", field)
	}
	if *p < 0 || *p > max {
		return 0, fmt.Errorf("%s = %d, out of range 0..%d", field, *p, max)
	}
	return *p, nil
}

func parseTCBInfoBody(body []byte) (*tcbInfo, error) {
	var in struct {
		ID                      *string           `json:"id"`
		Version                 *int              `json:"version"`
		IssueDate               string            `json:"issueDate"`
		NextUpdate              string            `json:"nextUpdate"`
		FMSPC                   string            `json:"fmspc"`
		PCEID                   string            `json:"pceId"`
		TCBType                 *int              `json:"tcbType"`
		TCBEvaluationDataNumber *int              `json:"tcbEvaluationDataNumber"`
		TCBLevels               []json.RawMessage `json:"tcbLevels"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return nil, err
	}
	out := &tcbInfo{}
	v, err := intField("version", in.Version, 1<<16)
	if err != nil {
		return nil, err
	}
	out.Version = v
	switch v {
	case 2:
		if in.ID != nil && *in.ID != "SGX" {
			return nil, fmt.Errorf("id %q, want SGX", *in.ID)
		}
	case 3:
		if in.ID == nil || *in.ID != "SGX" {
			return nil, fmt.Errorf("id %v, want SGX", strOrMissing(in.ID))
		}
	default:
		return nil, fmt.Errorf("%w: version %d, want 2 or 3", ErrUnsupported, v)
	}
	if in.TCBType != nil && *in.TCBType != 0 {
		return nil, fmt.Errorf("%w: tcbType %d, want 0", ErrUnsupported, *in.TCBType)
	}
	if out.IssueDate, err = parseTime("issueDate", in.IssueDate); err != nil {
		return nil, err
	}
	if out.NextUpdate, err = parseTime("nextUpdate", in.NextUpdate); err != nil {
		return nil, err
	}
	if err := hexField("fmspc", in.FMSPC, out.FMSPC[:]); err != nil {
		return nil, err
	}
	if err := hexField("pceId", in.PCEID, out.PCEID[:]); err != nil {
		return nil, err
	}
	n, err := intField("tcbEvaluationDataNumber", in.TCBEvaluationDataNumber, 1<<31-1)
	if err != nil {
		return nil, err
	}
	out.TCBEvaluationDataNumber = uint32(n)
	if len(in.TCBLevels) == 0 {
		return nil, fmt.Errorf("no tcbLevels")
	}
	for i, raw := range in.TCBLevels {
		l, err := parseTCBLevel(raw, v)
		if err != nil {
			return nil, fmt.Errorf("tcbLevels[%d]: %v", i, err)
		}
		out.Levels = append(out.Levels, *l)
	}
	return out, nil
}

func strOrMissing(s *string) string {
	if s == nil {
		return "missing"
	}
	return fmt.Sprintf("%q", *s)
}

func parseTCBLevel(raw []byte, version int) (*tcbLevel, error) {
	var in struct {
		TCB         json.RawMessage `json:"tcb"`
		TCBDate     string          `json:"tcbDate"`
		TCBStatus   string          `json:"tcbStatus"`
		AdvisoryIDs []string        `json:"advisoryIDs"`
	}
	if err := decodeStrict(raw, &in); err != nil {
		return nil, err
	}
	l := &tcbLevel{AdvisoryIDs: in.AdvisoryIDs}
	var err error
	if l.Status, err = ParseTCBStatus(in.TCBStatus); err != nil {
		return nil, err
	}
	if in.TCBDate != "" {
		if l.TCBDate, err = parseTime("tcbDate", in.TCBDate); err != nil {
			return nil, err
		}
	}
	if len(in.TCB) == 0 {
		return nil, fmt.Errorf("no tcb")
	}
	if version == 3 {
		var tcb struct {
			Components []struct {
				SVN *int `json:"svn"`
			} `json:"sgxtcbcomponents"`
			PCESVN *int `json:"pcesvn"`
		}
		if err := decodeStrict(in.TCB, &tcb); err != nil {
			return nil, err
		}
		if len(tcb.Components) != 16 {
			return nil, fmt.Errorf("%d sgxtcbcomponents, want 16", len(tcb.Components))
		}
		for i, c := range tcb.Components {
			svn, err := intField(fmt.Sprintf("sgxtcbcomponents[%d].svn", i), c.SVN, 255)
			if err != nil {
				return nil, err
			}
			l.Components[i] = uint8(svn)
		}
		p, err := intField("pcesvn", tcb.PCESVN, 65535)
		if err != nil {
			return nil, err
		}
		l.PCESVN = uint16(p)
		return l, nil
	}
	var tcb map[string]*int
	if err := decodeStrict(in.TCB, &tcb); err != nil {
		return nil, err
	}
	for i := range 16 {
		name := fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)
		svn, err := intField(name, tcb[name], 255)
		if err != nil {
			return nil, err
		}
		l.Components[i] = uint8(svn)
	}
	p, err := intField("pcesvn", tcb["pcesvn"], 65535)
	if err != nil {
		return nil, err
	}
	l.PCESVN = uint16(p)
	return l, nil
}

func parseQEIdentityBody(body []byte) (*qeIdentity, error) {
	var in struct {
		ID                      string `json:"id"`
		Version                 *int   `json:"version"`
		IssueDate               string `json:"issueDate"`
		NextUpdate              string `json:"nextUpdate"`
		TCBEvaluationDataNumber *int   `json:"tcbEvaluationDataNumber"`
		MiscSelect              string `json:"miscselect"`
		MiscSelectMask          string `json:"miscselectMask"`
		Attributes              string `json:"attributes"`
		AttributesMask          string `json:"attributesMask"`
		MRSIGNER                string `json:"mrsigner"`
		ISVProdID               *int   `json:"isvprodid"`
		TCBLevels               []struct {
			TCB struct {
				ISVSVN *int `json:"isvsvn"`
			} `json:"tcb"`
			TCBDate     string   `json:"tcbDate"`
			TCBStatus   string   `json:"tcbStatus"`
			AdvisoryIDs []string `json:"advisoryIDs"`
		} `json:"tcbLevels"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return nil, err
	}
	out := &qeIdentity{}
	v, err := intField("version", in.Version, 1<<16)
	if err != nil {
		return nil, err
	}
	if v != 2 {
		return nil, fmt.Errorf("%w: version %d, want 2", ErrUnsupported, v)
	}
	out.Version = v
	if in.ID != "QE" {
		return nil, fmt.Errorf("%w: id %q, want QE", ErrUnsupported, in.ID)
	}
	if out.IssueDate, err = parseTime("issueDate", in.IssueDate); err != nil {
		return nil, err
	}
	if out.NextUpdate, err = parseTime("nextUpdate", in.NextUpdate); err != nil {
		return nil, err
	}
	n, err := intField("tcbEvaluationDataNumber", in.TCBEvaluationDataNumber, 1<<31-1)
	if err != nil {
		return nil, err
	}
	out.TCBEvaluationDataNumber = uint32(n)
	for _, f := range []struct {
		name, val string
		out       []byte
	}{
		{"miscselect", in.MiscSelect, out.MiscSelect[:]},
		{"miscselectMask", in.MiscSelectMask, out.MiscSelectMask[:]},
		{"attributes", in.Attributes, out.Attributes[:]},
		{"attributesMask", in.AttributesMask, out.AttributesMask[:]},
		{"mrsigner", in.MRSIGNER, out.MRSIGNER[:]},
	} {
		if err := hexField(f.name, f.val, f.out); err != nil {
			return nil, err
		}
	}
	p, err := intField("isvprodid", in.ISVProdID, 65535)
	if err != nil {
		return nil, err
	}
	out.ISVProdID = uint16(p)
	if len(in.TCBLevels) == 0 {
		return nil, fmt.Errorf("no tcbLevels")
	}
	for i, l := range in.TCBLevels {
		svn, err := intField(fmt.Sprintf("tcbLevels[%d].tcb.isvsvn", i), l.TCB.ISVSVN, 65535)
		if err != nil {
			return nil, err
		}
		st, err := ParseTCBStatus(l.TCBStatus)
		if err != nil || !validQEStatus(st) {
			return nil, fmt.Errorf("tcbLevels[%d]: tcbStatus %q, want UpToDate, OutOfDate or Revoked", i, l.TCBStatus)
		}
		lvl := qeLevel{ISVSVN: uint16(svn), Status: st, AdvisoryIDs: l.AdvisoryIDs}
		if l.TCBDate != "" {
			if lvl.TCBDate, err = parseTime(fmt.Sprintf("tcbLevels[%d].tcbDate", i), l.TCBDate); err != nil {
				return nil, err
			}
		}
		out.Levels = append(out.Levels, lvl)
	}
	return out, nil
}
