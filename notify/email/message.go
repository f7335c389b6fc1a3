package email

import (
	"bytes"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/internal/msgtext"
)

// content is what one mail says, before it becomes MIME.
type content struct {
	Subject string
	Heading string
	Color   string
	Fields  []msgtext.Field
	// Digest only.
	Groups     []string
	MoreGroups int
	Names      []msgtext.DigestEntry
	MoreNames  int
}

const subjectPrefix = "[LunaSentri] "

func color(typ string) string {
	switch typ {
	case notify.EventOffline:
		return "#d62728"
	case notify.EventOnline:
		return "#2ca02c"
	case notify.EventFlapping:
		return "#ff7f0e"
	}
	return "#1f77b4"
}

func eventMail(ev notify.Event) (content, error) {
	switch ev.Type {
	case notify.EventOffline, notify.EventOnline, notify.EventFlapping, notify.EventTest:
	default:
		return content{}, fmt.Errorf("%w %q", ErrUnknownEventType, ev.Type)
	}
	title := msgtext.Title(ev)
	return content{Subject: subjectPrefix + title, Heading: title, Color: color(ev.Type), Fields: msgtext.Fields(ev)}, nil
}

func digestMail(d notify.Digest) content {
	off, _ := d.Counts()
	c := content{Subject: "[LunaSentri] digest: " + strings.TrimPrefix(msgtext.DigestTitle(d), "LunaSentri digest: "),
		Heading: msgtext.DigestTitle(d), Color: color(notify.EventOnline)}
	if off > 0 {
		c.Color = color(notify.EventOffline)
	}
	c.Groups, c.MoreGroups = msgtext.DigestGroups(d, 50)
	// A mail has room for more names than a chat message.
	c.Names, c.MoreNames = msgtext.DigestNamesOf(d, 200)
	return c
}

func (c content) plain() string {
	var b strings.Builder
	b.WriteString(c.Heading + "\n\n")
	for _, f := range c.Fields {
		b.WriteString(f.Name + ": " + f.Value + "\n")
	}
	if len(c.Groups) > 0 {
		b.WriteString("By group:\n")
		for _, g := range c.Groups {
			b.WriteString("  " + g + "\n")
		}
		if c.MoreGroups > 0 {
			fmt.Fprintf(&b, "  … and %d more groups\n", c.MoreGroups)
		}
		b.WriteString("\n")
	}
	for _, e := range c.Names {
		fmt.Fprintf(&b, "%-8s %s\n", msgtext.Verb(e.Type), e.Text)
	}
	if c.MoreNames > 0 {
		fmt.Fprintf(&b, "… and %d more\n", c.MoreNames)
	}
	b.WriteString("\n-- \nSent by LunaSentri\n")
	return b.String()
}

var htmlTmpl = template.Must(template.New("mail").Funcs(template.FuncMap{"verb": msgtext.Verb}).Parse(`<!DOCTYPE html>
<html><body style="font-family:sans-serif">
<h2 style="border-left:6px solid {{.Color}};padding-left:8px">{{.Heading}}</h2>
{{if .Fields}}<table cellpadding="4">{{range .Fields}}
<tr><th align="left" valign="top">{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}
</table>{{end}}
{{if .Groups}}<h3>By group</h3><ul>{{range .Groups}}<li>{{.}}</li>{{end}}{{if .MoreGroups}}<li>… and {{.MoreGroups}} more groups</li>{{end}}</ul>{{end}}
{{if .Names}}<table cellpadding="2">{{range .Names}}
<tr><td>{{verb .Type}}</td><td>{{.Text}}</td></tr>{{end}}
</table>{{if .MoreNames}}<p>… and {{.MoreNames}} more</p>{{end}}{{end}}
<p style="color:#888">Sent by LunaSentri</p>
</body></html>
`))

// headerSafe flattens whitespace (no CR/LF can reach a header) and
// RFC 2047-encodes what is not plain ASCII.
func headerSafe(s string) string {
	return mime.QEncoding.Encode("utf-8", strings.Join(strings.Fields(s), " "))
}

// messageID is stable per delivery id, so a retried mail is the same mail.
func messageID(id string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, id)
	if safe == "" {
		safe = "unknown"
	}
	return "<" + safe + "@lunasentri>"
}

// compose renders c as a MIME message.
func (n *Notifier) compose(c content, id, eventType string) ([]byte, error) {
	var htmlBody bytes.Buffer
	if err := htmlTmpl.Execute(&htmlBody, c); err != nil {
		return nil, fmt.Errorf("email: render html: %w", err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	to := make([]string, len(n.to))
	for i, a := range n.to {
		to[i] = a.String() // net/mail encodes non-ASCII names
	}
	h := []struct{ k, v string }{
		{"From", n.from.String()},
		{"To", strings.Join(to, ", ")},
		{"Subject", headerSafe(msgtext.Truncate(c.Subject, 200))},
		{"Date", n.now().UTC().Format(time.RFC1123Z)},
		{"Message-ID", messageID(id)},
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/alternative; boundary="` + mw.Boundary() + `"`},
		{"X-LunaSentri-Event", eventType},
		{"X-LunaSentri-Delivery", headerSafe(id)},
		{"Auto-Submitted", "auto-generated"},
	}
	for _, kv := range h {
		buf.WriteString(kv.k + ": " + kv.v + "\r\n")
	}
	buf.WriteString("\r\n")
	for _, part := range []struct{ ctype, body string }{
		{"text/plain; charset=utf-8", c.plain()},
		{"text/html; charset=utf-8", htmlBody.String()},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
