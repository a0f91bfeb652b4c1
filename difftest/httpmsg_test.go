package difftest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// field is one header line, as received (name case and order kept).
type field struct {
	Name, Value string
}

// maxHeaderBytes bounds a header block read by the harness.
const maxHeaderBytes = 64 << 10

// maxBodyBytes bounds a body read by the harness.
const maxBodyBytes = 4 << 20

// readLine reads one line ending in LF and returns it without CR LF.
func readLine(br *bufio.Reader, budget *int) (string, error) {
	var sb strings.Builder
	for {
		frag, err := br.ReadSlice('\n')
		sb.Write(frag)
		*budget -= len(frag)
		if *budget < 0 {
			return "", errors.New("header block too large")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && sb.Len() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		return strings.TrimRight(sb.String(), "\r\n"), nil
	}
}

// readHead reads a start line and the header fields up to the empty line.
// Folded continuation lines are appended to the previous field.
func readHead(br *bufio.Reader) (start string, fields []field, err error) {
	budget := maxHeaderBytes
	start, err = readLine(br, &budget)
	if err != nil {
		return "", nil, err
	}
	for {
		line, err := readLine(br, &budget)
		if err != nil {
			return start, fields, err
		}
		if line == "" {
			return start, fields, nil
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return start, fields, fmt.Errorf("malformed header line %q", line)
		}
		fields = append(fields, field{Name: name, Value: strings.TrimSpace(value)})
	}
}

// headerValues returns every value of the named header (case-insensitive).
func headerValues(fields []field, name string) []string {
	var vs []string
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// headerValue returns the values of the named header joined by ", ", and
// whether it was present.
func headerValue(fields []field, name string) (string, bool) {
	vs := headerValues(fields, name)
	return strings.Join(vs, ", "), len(vs) > 0
}

// framing says how a body was delimited on the wire.
type framing string

const (
	framingNone    framing = "none"
	framingLength  framing = "content-length"
	framingChunked framing = "chunked"
	framingClose   framing = "until-close"
	framingTunnel  framing = "tunnel (after 101)"
)

// isChunked reports whether the last transfer coding is chunked.
func isChunked(fields []field) bool {
	te, ok := headerValue(fields, "Transfer-Encoding")
	if !ok {
		return false
	}
	codings := strings.Split(te, ",")
	return strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked")
}

// readBody reads a body delimited per RFC 9112 section 6. untilClose says
// whether a message without length reads until EOF (responses) or is empty
// (requests).
func readBody(br *bufio.Reader, fields []field, untilClose bool) ([]byte, framing, []field, error) {
	if isChunked(fields) {
		b, trailers, err := readChunked(br)
		return b, framingChunked, trailers, err
	}
	if cl, ok := headerValue(fields, "Content-Length"); ok {
		// Repeated identical values are allowed ("5, 5").
		parts := strings.Split(cl, ",")
		n, err := strconv.ParseInt(strings.TrimSpace(parts[0]), 10, 64)
		if err != nil || n < 0 || n > maxBodyBytes {
			return nil, framingLength, nil, fmt.Errorf("bad Content-Length %q", cl)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(br, b)
		return b, framingLength, nil, err
	}
	if !untilClose {
		return nil, framingNone, nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(br, maxBodyBytes))
	return b, framingClose, nil, err
}

// readChunked decodes a chunked body and its trailer section.
func readChunked(br *bufio.Reader) ([]byte, []field, error) {
	var out []byte
	budget := maxHeaderBytes
	for {
		line, err := readLine(br, &budget)
		if err != nil {
			return out, nil, err
		}
		sizeStr, _, _ := strings.Cut(line, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(sizeStr), 16, 64)
		if err != nil || n < 0 || int64(len(out))+n > maxBodyBytes {
			return out, nil, fmt.Errorf("bad chunk size line %q", line)
		}
		if n == 0 {
			break
		}
		chunk := make([]byte, n)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return out, nil, err
		}
		out = append(out, chunk...)
		if crlf, err := readLine(br, &budget); err != nil || crlf != "" {
			return out, nil, fmt.Errorf("missing CRLF after chunk (%v)", err)
		}
	}
	var trailers []field
	for {
		line, err := readLine(br, &budget)
		if err != nil {
			return out, trailers, err
		}
		if line == "" {
			return out, trailers, nil
		}
		name, value, _ := strings.Cut(line, ":")
		trailers = append(trailers, field{Name: name, Value: strings.TrimSpace(value)})
	}
}
