package imagegentest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// operation is an image endpoint.
type operation int

const (
	opNone operation = iota
	opGenerate
	opEdit
)

// route is the endpoint a path names and, for Azure paths, the deployment.
type route struct {
	op         operation
	deployment string
}

func routeOf(path string) route {
	switch path {
	case "/v1/images/generations":
		return route{op: opGenerate}
	case "/v1/images/edits":
		return route{op: opEdit}
	}
	rest, ok := strings.CutPrefix(path, "/openai/deployments/")
	if !ok {
		return route{}
	}
	deployment, endpoint, ok := strings.Cut(rest, "/")
	if !ok || deployment == "" {
		return route{}
	}
	switch endpoint {
	case "images/generations":
		return route{op: opGenerate, deployment: deployment}
	case "images/edits":
		return route{op: opEdit, deployment: deployment}
	}
	return route{}
}

// maxBodyBytes bounds request bodies. OpenAI accepts input images of up to
// 50 MB each; tests send far less.
const maxBodyBytes = 64 << 20

// maxPromptLength is OpenAI's prompt limit for GPT Image models, in
// characters.
const maxPromptLength = 32000

func invalidRequest(status int, param, code, msg string) *Response {
	r := errorResponse(status, nil, TypeInvalidRequest, param, code, msg)
	return &r
}

func bodyReadError(err error) *Response {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return invalidRequest(http.StatusRequestEntityTooLarge, "", "",
			fmt.Sprintf("The request body is larger than the %d bytes that this server accepts.", maxBodyBytes))
	}
	return invalidRequest(http.StatusBadRequest, "", "", "The request body could not be read: "+err.Error())
}

// readJSONBody decodes a JSON object body. An empty body gives a nil map,
// which later fails validation as a missing prompt.
func readJSONBody(w http.ResponseWriter, r *http.Request) (map[string]any, *Response) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, bodyReadError(err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, invalidRequest(http.StatusBadRequest, "", "",
			"We could not parse the JSON body of your request. The OpenAI API expects a JSON payload, "+
				"but what was sent was not valid JSON: "+err.Error())
	}
	return body, nil
}

// readMultipartBody reads a multipart/form-data body. A part is a file when
// it has a file name or a Content-Type header. A file part without a
// Content-Type is application/octet-stream, as RFC 7578 specifies.
func readMultipartBody(w http.ResponseWriter, r *http.Request) (map[string]any, []RecordedFile, *Response) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	defer func() { _, _ = io.Copy(io.Discard, r.Body) }()

	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, invalidRequest(http.StatusBadRequest, "", "",
			"Invalid Content-Type header ("+r.Header.Get("Content-Type")+"), expected multipart/form-data.")
	}
	body := map[string]any{}
	var files []RecordedFile
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return body, files, bodyReadError(err)
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return body, files, bodyReadError(err)
		}
		contentType := part.Header.Get("Content-Type")
		if part.FileName() == "" && contentType == "" {
			body[part.FormName()] = string(data)
			continue
		}
		if contentType == "" {
			contentType = "application/octet-stream"
		}
		files = append(files, RecordedFile{
			Field:       part.FormName(),
			Filename:    part.FileName(),
			ContentType: contentType,
			Data:        data,
		})
	}
	return body, files, nil
}

// imageParams are the validated fields of a generation or edit request.
type imageParams struct {
	prompt         string
	model          string
	n              int
	width, height  int
	quality        string // echoed: "auto" and "" become DefaultQuality
	background     string // echoed: "transparent" or "opaque"
	format         string // "png" or "jpeg", the encoding actually produced
	compression    int    // jpeg quality from 1 to 100
	responseFormat string // "url" or "b64_json"
	dalle          bool
}

// fields reads typed values from a request body: JSON values, or strings
// for multipart bodies. JSON null counts as absent.
type fields struct {
	body      map[string]any
	multipart bool
}

func (f fields) lookup(name string) (any, bool) {
	v, ok := f.body[name]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

func invalidType(name, want string, got any) *Response {
	kind := "an object"
	switch got.(type) {
	case string:
		kind = "a string"
	case float64:
		kind = "a number"
	case bool:
		kind = "a boolean"
	case []any:
		kind = "an array"
	}
	return invalidRequest(http.StatusBadRequest, name, "invalid_type",
		fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", name, want, kind))
}

func (f fields) str(name string) (string, *Response) {
	v, ok := f.lookup(name)
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", invalidType(name, "a string", v)
	}
	return s, nil
}

// integer returns the field's value, or def when absent.
func (f fields) integer(name string, def int) (int, *Response) {
	v, ok := f.lookup(name)
	if !ok {
		return def, nil
	}
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e9 {
			return int(v), nil
		}
	case string:
		if f.multipart {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return n, nil
			}
		}
	}
	return 0, invalidType(name, "an integer", v)
}

// enum returns the field's value when it is one of allowed or absent.
func (f fields) enum(name string, allowed ...string) (string, *Response) {
	s, errResp := f.str(name)
	if errResp != nil || s == "" {
		return s, errResp
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", invalidRequest(http.StatusBadRequest, name, CodeInvalidValue,
		fmt.Sprintf("Invalid value: '%s'. Supported values are: %s.", s, quoteList(allowed)))
}

// parseImageParams validates the fields that generation and edit requests
// share, in the order OpenAI reports them.
func parseImageParams(rec *RecordedRequest, rt route) (imageParams, *Response) {
	f := fields{body: rec.Body, multipart: rt.op == opEdit}
	var p imageParams
	var errResp *Response

	if p.prompt, errResp = f.str("prompt"); errResp != nil {
		return p, errResp
	}
	if p.prompt == "" {
		return p, invalidRequest(http.StatusBadRequest, "prompt", CodeMissingRequiredParam, "Missing required parameter: 'prompt'.")
	}
	if n := promptLength(p.prompt); n > maxPromptLength {
		return p, invalidRequest(http.StatusBadRequest, "prompt", "string_above_max_length",
			fmt.Sprintf("Invalid 'prompt': string too long. Expected a string with maximum length %d, but got a string with length %d instead.",
				maxPromptLength, n))
	}

	if p.model, errResp = f.str("model"); errResp != nil {
		return p, errResp
	}
	if rt.deployment != "" {
		p.model = rt.deployment
	}
	p.dalle = strings.HasPrefix(p.model, "dall-e")

	if p.n, errResp = f.integer("n", 1); errResp != nil {
		return p, errResp
	}
	if p.n < 1 || p.n > 10 {
		return p, invalidRequest(http.StatusBadRequest, "n", CodeInvalidValue,
			fmt.Sprintf("Invalid value for 'n': expected an integer from 1 to 10, but got %d.", p.n))
	}
	if p.model == "dall-e-3" && p.n != 1 {
		return p, invalidRequest(http.StatusBadRequest, "n", CodeInvalidValue, "Invalid 'n': dall-e-3 only supports n=1.")
	}

	if _, present := f.lookup("response_format"); present && !p.dalle {
		return p, invalidRequest(http.StatusBadRequest, "response_format", CodeUnknownParameter, "Unknown parameter: 'response_format'.")
	}
	if p.responseFormat, errResp = f.enum("response_format", "url", "b64_json"); errResp != nil {
		return p, errResp
	}

	size, errResp := f.str("size")
	if errResp != nil {
		return p, errResp
	}
	var ok bool
	if p.width, p.height, ok = parseImageSize(size); !ok {
		return p, invalidRequest(http.StatusBadRequest, "size", CodeInvalidValue,
			fmt.Sprintf("Invalid value: '%s'. Supported values are 'auto' and WIDTHxHEIGHT with edges from 1 to %d pixels, such as '1024x1024', '1024x1536' and '1536x1024'.",
				size, MaxImageEdge))
	}

	if p.quality, errResp = f.enum("quality", "low", "medium", "high", "xhigh", "max", "auto", "standard", "hd"); errResp != nil {
		return p, errResp
	}
	if p.quality == "" || p.quality == "auto" {
		p.quality = DefaultQuality
	}

	format, errResp := f.enum("output_format", "png", "jpeg", "webp", "gif", "svg")
	if errResp != nil {
		return p, errResp
	}
	// NOTE: the standard library has no WebP, GIF-animation or SVG output,
	// so every format other than jpeg is sent as PNG and echoed as "png".
	p.format = DefaultOutputFormat
	if format == "jpeg" {
		p.format = "jpeg"
	}

	background, errResp := f.enum("background", "transparent", "opaque", "auto")
	if errResp != nil {
		return p, errResp
	}
	if background == "transparent" && format == "jpeg" {
		return p, invalidRequest(http.StatusBadRequest, "background", CodeInvalidValue,
			"Transparent background is not supported for the jpeg output format; use png or webp.")
	}
	p.background = "opaque"
	if background == "transparent" {
		p.background = "transparent"
	}

	compression, errResp := f.integer("output_compression", 100)
	if errResp != nil {
		return p, errResp
	}
	if compression < 0 || compression > 100 {
		return p, invalidRequest(http.StatusBadRequest, "output_compression", CodeInvalidValue,
			fmt.Sprintf("Invalid value for 'output_compression': expected an integer from 0 to 100, but got %d.", compression))
	}
	p.compression = max(1, compression)

	if _, errResp = f.enum("moderation", "auto", "low"); errResp != nil {
		return p, errResp
	}
	if _, errResp = f.enum("style", "vivid", "natural"); errResp != nil {
		return p, errResp
	}
	if _, errResp = f.str("safety_identifier"); errResp != nil {
		return p, errResp
	}
	return p, nil
}

// editImageTypes are the media types OpenAI accepts for input images.
var editImageTypes = []string{"image/jpeg", "image/png", "image/webp"}

// checkEditFiles validates the file parts of an edit request and returns the
// estimated input image tokens.
func checkEditFiles(files []RecordedFile) (int64, *Response) {
	var tokens int64
	var images int
	for _, file := range files {
		isImage := file.Field == "image" || strings.HasPrefix(file.Field, "image[")
		if !isImage && file.Field != "mask" {
			continue
		}
		name := file.Field
		if strings.HasPrefix(name, "image[") {
			name = "image[" + strconv.Itoa(images) + "]"
		}

		allowed := editImageTypes
		if file.Field == "mask" {
			allowed = []string{"image/png"}
		}
		mediaType, _, _ := strings.Cut(file.ContentType, ";")
		if !containsString(allowed, strings.TrimSpace(mediaType)) {
			return 0, unsupportedMimetype(name, file.ContentType, allowed)
		}

		width, height := 1024, 1024
		if mediaType != "image/webp" {
			cfg, _, err := image.DecodeConfig(bytes.NewReader(file.Data))
			if err != nil {
				// NOTE: the wording and code of OpenAI's response to an
				// undecodable image are not confirmed.
				return 0, invalidRequest(http.StatusBadRequest, name, "invalid_image_file",
					fmt.Sprintf("Invalid image file for '%s': the data is not a valid %s image.", name, mediaType))
			}
			width, height = cfg.Width, cfg.Height
		}
		if isImage {
			images++
			tokens += ImageTokens(width, height)
		}
	}
	if images == 0 {
		return 0, invalidRequest(http.StatusBadRequest, "image", CodeMissingRequiredParam, "Missing required parameter: 'image'.")
	}
	return tokens, nil
}

func unsupportedMimetype(name, got string, allowed []string) *Response {
	return invalidRequest(http.StatusBadRequest, name, CodeUnsupportedFileMimetype,
		fmt.Sprintf("Invalid file '%s': unsupported mimetype ('%s'). Supported file formats are %s.", name, got, quoteList(allowed)))
}

// quoteList formats values as OpenAI lists them in messages: 'a', 'b', and
// 'c'.
func quoteList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "'" + v + "'"
	}
	if len(quoted) < 2 {
		return strings.Join(quoted, "")
	}
	return strings.Join(quoted[:len(quoted)-1], ", ") + ", and " + quoted[len(quoted)-1]
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type imagesResponseJSON struct {
	Created      int64       `json:"created"`
	Data         []imageJSON `json:"data"`
	Background   string      `json:"background,omitempty"`
	OutputFormat string      `json:"output_format,omitempty"`
	Quality      string      `json:"quality,omitempty"`
	Size         string      `json:"size,omitempty"`
	Usage        *usageJSON  `json:"usage,omitempty"`
}

type imageJSON struct {
	B64JSON       string `json:"b64_json,omitempty"`
	URL           string `json:"url,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

type usageJSON struct {
	InputTokens        int64             `json:"input_tokens"`
	InputTokensDetails inputTokensDetail `json:"input_tokens_details"`
	OutputTokens       int64             `json:"output_tokens"`
	TotalTokens        int64             `json:"total_tokens"`
}

type inputTokensDetail struct {
	TextTokens  int64 `json:"text_tokens"`
	ImageTokens int64 `json:"image_tokens"`
}

// serveImages validates a generation or edit request, applies the quota and
// responds with images.
func (s *Server) serveImages(a *exchange, rt route) {
	p, errResp := parseImageParams(a.rec, rt)
	if errResp != nil {
		s.writeScripted(a, errResp)
		return
	}
	var imageTokens int64
	if rt.op == opEdit {
		if imageTokens, errResp = checkEditFiles(a.rec.Files); errResp != nil {
			s.writeScripted(a, errResp)
			return
		}
	}

	var quotaHeader http.Header
	if s.quota != nil {
		now := s.cfg.clock() // read outside the lock: the clock is the caller's code
		s.mu.Lock()
		var deny *Response
		quotaHeader, deny = s.quota.admit(now, p.n, p.model)
		s.mu.Unlock()
		if deny != nil {
			s.writeScripted(a, deny)
			return
		}
	}

	useURL := s.cfg.urlResponses || p.responseFormat == "url" || (p.dalle && p.responseFormat == "")
	out := imagesResponseJSON{Created: s.cfg.clock().Unix(), Data: make([]imageJSON, p.n)}
	for i := range out.Data {
		data, err := s.images.get(imageKey{
			prompt:      p.prompt,
			model:       p.model,
			width:       p.width,
			height:      p.height,
			format:      p.format,
			transparent: p.background == "transparent" && p.format == "png",
			compression: p.compression,
			index:       i,
		})
		if err != nil {
			s.writeScripted(a, new(ServerError(http.StatusInternalServerError)))
			return
		}
		if useURL {
			out.Data[i].URL = s.storeFile(data, p.format)
		} else {
			out.Data[i].B64JSON = base64.StdEncoding.EncodeToString(data)
		}
		if p.model == "dall-e-3" {
			out.Data[i].RevisedPrompt = revisedPrompt(p.prompt)
		}
	}
	if !p.dalle {
		out.Background = p.background
		out.OutputFormat = p.format
		out.Quality = p.quality
		out.Size = strconv.Itoa(p.width) + "x" + strconv.Itoa(p.height)
		text := TextTokens(p.prompt)
		output := int64(p.n) * OutputTokens(p.quality, p.width, p.height)
		out.Usage = &usageJSON{
			InputTokens:        text + imageTokens,
			InputTokensDetails: inputTokensDetail{TextTokens: text, ImageTokens: imageTokens},
			OutputTokens:       output,
			TotalTokens:        text + imageTokens + output,
		}
	}

	body, err := json.Marshal(out)
	if err != nil {
		s.writeScripted(a, new(ServerError(http.StatusInternalServerError)))
		return
	}
	s.write(a, http.StatusOK, quotaHeader, body, p.n)
}

// revisedPrompt imitates the prompt rewriting of DALL·E 3.
func revisedPrompt(prompt string) string {
	return "A detailed, high-quality image of: " + prompt
}
