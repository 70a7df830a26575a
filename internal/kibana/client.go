package kibana

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
)

// Client talks to one Kibana.
type Client struct {
	cfg  Config
	http *http.Client
}

// New returns a client for cfg; hc nil means http.DefaultClient. Bound the
// time of calls with their context.
func New(cfg Config, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{cfg: cfg, http: hc}
}

// Object is one saved object Kibana imported.
type Object struct {
	Type  string
	ID    string
	Title string
}

// ImportResult is what an import did.
type ImportResult struct {
	Objects []Object
}

// APIError is an HTTP error answer from Kibana; Message is Kibana's own
// message when it sent one.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("Kibana answered %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// ObjectError is one saved object Kibana refused to import.
type ObjectError struct {
	Type, ID, Title string
	// Reason is Kibana's error type: conflict, ambiguous_conflict,
	// missing_references, unsupported_type or unknown.
	Reason string
	// Detail is Kibana's message, or the missing references.
	Detail string
}

// ImportError is an import that Kibana answered with success false; the
// objects not listed in Errors were imported.
type ImportError struct {
	Imported []Object
	Errors   []ObjectError
}

func (e *ImportError) Error() string {
	parts := make([]string, 0, len(e.Errors))
	for _, o := range e.Errors {
		s := fmt.Sprintf("%s %s: %s", o.Type, o.ID, o.Reason)
		if o.Detail != "" {
			s += " (" + o.Detail + ")"
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("Kibana refused %d saved objects (%d imported): %s", len(e.Errors), len(e.Imported), strings.Join(parts, "; "))
}

// importResponse is the body of a 200 answer of the import API.
type importResponse struct {
	Success        bool `json:"success"`
	SuccessCount   int  `json:"successCount"`
	SuccessResults []struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Title string `json:"title"`
		Meta  struct {
			Title string `json:"title"`
		} `json:"meta"`
	} `json:"successResults"`
	Errors []struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Title string `json:"title"`
		Meta  struct {
			Title string `json:"title"`
		} `json:"meta"`
		Error struct {
			Type       string `json:"type"`
			Message    string `json:"message"`
			References []struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			} `json:"references"`
		} `json:"error"`
	} `json:"errors"`
}

// Import sends ndjson (saved objects, one JSON object a line) to Kibana's
// import API as a file named filename, overwriting objects with the same
// ids. An HTTP error is an *APIError; objects Kibana refused make an
// *ImportError.
func (c *Client) Import(ctx context.Context, filename string, ndjson []byte) (ImportResult, error) {
	body, contentType, err := multipartFile(filename, ndjson)
	if err != nil {
		return ImportResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.importURL(), bytes.NewReader(body))
	if err != nil {
		return ImportResult{}, fmt.Errorf("kibana import request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("kbn-xsrf", "sluice")
	password, apiKey, err := c.cfg.credentials("kibana")
	if err != nil {
		return ImportResult{}, err
	}
	switch {
	case apiKey.IsSet():
		req.Header.Set("Authorization", "ApiKey "+apiKey.Reveal())
	case c.cfg.Username != "":
		req.SetBasicAuth(c.cfg.Username, password.Reveal())
	}
	res, err := c.http.Do(req)
	if err != nil {
		return ImportResult{}, fmt.Errorf("kibana import: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return ImportResult{}, fmt.Errorf("kibana import: reading the answer: %w", err)
	}
	if res.StatusCode/100 != 2 {
		return ImportResult{}, &APIError{StatusCode: res.StatusCode, Message: errorMessage(data)}
	}
	var ir importResponse
	if err := json.Unmarshal(data, &ir); err != nil {
		return ImportResult{}, fmt.Errorf("kibana import: the answer is not the import API's JSON (is %s Kibana?): %w", c.cfg.URL, err)
	}
	var result ImportResult
	for _, o := range ir.SuccessResults {
		result.Objects = append(result.Objects, Object{Type: o.Type, ID: o.ID, Title: firstNonEmpty(o.Meta.Title, o.Title)})
	}
	if ir.Success && len(ir.Errors) == 0 {
		return result, nil
	}
	ie := &ImportError{Imported: result.Objects}
	for _, e := range ir.Errors {
		detail := e.Error.Message
		if len(e.Error.References) > 0 {
			refs := make([]string, 0, len(e.Error.References))
			for _, r := range e.Error.References {
				refs = append(refs, r.Type+" "+r.ID)
			}
			detail = "missing " + strings.Join(refs, ", ")
		}
		ie.Errors = append(ie.Errors, ObjectError{
			Type: e.Type, ID: e.ID, Title: firstNonEmpty(e.Meta.Title, e.Title),
			Reason: e.Error.Type, Detail: detail,
		})
	}
	if len(ie.Errors) == 0 {
		ie.Errors = append(ie.Errors, ObjectError{Reason: "unknown", Detail: "success is false and no errors were listed"})
	}
	return result, ie
}

// multipartFile encodes data as the form field "file", as the import API
// wants it.
func multipartFile(filename string, data []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
	h.Set("Content-Type", "application/ndjson")
	part, err := w.CreatePart(h)
	if err != nil {
		return nil, "", fmt.Errorf("encoding saved objects: %w", err)
	}
	if _, err := part.Write(data); err != nil {
		return nil, "", fmt.Errorf("encoding saved objects: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, "", fmt.Errorf("encoding saved objects: %w", err)
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// errorMessage extracts Kibana's message from an error body
// ({"statusCode":400,"error":"Bad Request","message":"..."}), else returns
// the body itself, shortened.
func errorMessage(body []byte) string {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && (e.Message != "" || e.Error != "") {
		return firstNonEmpty(e.Message, e.Error)
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 512 {
		s = s[:512] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// IsUnauthorized reports whether err is Kibana refusing the credentials.
func IsUnauthorized(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden)
}
