package processor_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// anyAddress finds an email address in a text (dead-letter reasons must not
// hold one: they reach warn-level logs and DLQ headers).
var anyAddress = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}`)

func brandingOrder(id string, emails []string) cdc.Row {
	return cdc.Row{"id": id, "company_id": "c-acme", "status": "placed", "notify_emails": emails}
}

func addresses(out processor.Output) string {
	var to []string
	for _, j := range out.Jobs {
		to = append(to, j.To.Address)
	}
	return join(to)
}

// TestRecipientsFollowTheAddressRule: each branding order's notify_emails
// list is resolved by the address rule: valid entries are mailed in their
// canonical form, refused ones counted, and an email left with no valid
// recipient is a dead letter with the reason (and no address in it).
func TestRecipientsFollowTheAddressRule(t *testing.T) {
	h := newHarness(t)
	h.seed()
	cases := []struct {
		name    string
		emails  []string
		to      string // addresses mailed, in order
		refused int
		dlq     string // reason prefix of the one dead letter, "" for none
	}{
		{"valid", []string{"ops@acme.example"}, "ops@acme.example", 0, ""},
		{"every entry unparsable", []string{"not an address", "@@", "ops@", ""}, "", 3,
			"no valid recipient for branding.instructions: 3 refused"},
		{"recipient injection", []string{`"attacker@evil.test,x"@acme.example`}, "", 1,
			"no valid recipient for branding.instructions: 1 refused (order_contacts: quoted or escaped local part)"},
		{"partly unparsable", []string{`"attacker@evil.test,x"@acme.example`, "ops@acme.example", "Bob <bob@acme.example>",
			"a@evil.test,b@acme.example", "x@evil.test;y@acme.example", "cfo@acme.example"}, "ops@acme.example,cfo@acme.example", 4, ""},
		{"canonical form, duplicates by case", []string{" Ops@ACME.Example ", "ops@acme.example"}, "Ops@acme.example", 0, ""},
		{"header injection", []string{"ops@acme.example\r\nBcc: victim@evil.test"}, "", 1, "no valid recipient for branding.instructions: 1 refused (order_contacts: control character)"},
		{"no address given", []string{}, "", 0, "no valid recipient for branding.instructions: no address given"},
		{"only blanks", []string{"", "  "}, "", 0, "no valid recipient for branding.instructions: no address given"},
	}
	for i, c := range cases {
		out := h.apply(t0, h.change(cdc.BrandingOrders, cdc.OpCreate, brandingOrder(fmt.Sprintf("bo%d", i), c.emails)))
		if got := addresses(out); got != c.to {
			t.Errorf("%s: mailed %q, want %q", c.name, got, c.to)
		}
		if out.Stats.RecipientsRefused != c.refused {
			t.Errorf("%s: %d refused counted, want %d", c.name, out.Stats.RecipientsRefused, c.refused)
		}
		switch {
		case c.dlq == "" && len(out.DLQ) != 0:
			t.Errorf("%s: dead letters %+v", c.name, out.DLQ)
		case c.dlq != "" && (len(out.DLQ) != 1 || !strings.HasPrefix(out.DLQ[0].Reason, c.dlq)):
			t.Errorf("%s: dead letters %+v, want one starting %q", c.name, out.DLQ, c.dlq)
		}
		for _, d := range out.DLQ {
			if a := anyAddress.FindString(d.Reason); a != "" {
				t.Errorf("%s: reason %q holds the address %q", c.name, d.Reason, a)
			}
		}
		for _, j := range out.Jobs {
			if strings.Contains(j.To.Address, "evil") {
				t.Errorf("%s: mailed %q", c.name, j.To.Address)
			}
		}
	}
	t.Logf("%d cases", len(cases))
}

// TestTooManyRecipientsIsADeadLetter: one email has at most --max-recipients
// recipients; above it the email is dead-lettered whole, nothing sent.
func TestTooManyRecipientsIsADeadLetter(t *testing.T) {
	h := newHarness(t)
	h.seed()
	list := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("contact%d@acme.example", i)
		}
		return out
	}
	cases := []struct {
		n, jobs int
		dlq     string
	}{
		{processor.DefaultMaxRecipients, processor.DefaultMaxRecipients, ""},
		{processor.DefaultMaxRecipients + 1, 0, "too many recipients for branding.instructions: 51, at most 50"},
		{20000, 0, "too many recipients for branding.instructions: 20000, at most 50"},
	}
	for i, c := range cases {
		out := h.apply(t0, h.change(cdc.BrandingOrders, cdc.OpCreate, brandingOrder(fmt.Sprintf("big%d", i), list(c.n))))
		if len(out.Jobs) != c.jobs || len(out.Commit.Emitted) != c.jobs {
			t.Errorf("%d addresses: %d jobs, %d emitted keys; want %d", c.n, len(out.Jobs), len(out.Commit.Emitted), c.jobs)
		}
		switch {
		case c.dlq == "" && len(out.DLQ) != 0:
			t.Errorf("%d addresses: dead letters %+v", c.n, out.DLQ)
		case c.dlq != "" && (len(out.DLQ) != 1 || !strings.HasPrefix(out.DLQ[0].Reason, c.dlq)):
			t.Errorf("%d addresses: dead letters %+v, want one starting %q", c.n, out.DLQ, c.dlq)
		}
	}
	// The cap is a setting.
	h = newHarnessConfig(t, processor.Config{MaxRecipients: 2})
	h.seed()
	out := h.apply(t0, h.change(cdc.BrandingOrders, cdc.OpCreate, brandingOrder("bo", list(3))))
	if len(out.Jobs) != 0 || len(out.DLQ) != 1 || !strings.Contains(out.DLQ[0].Reason, "3, at most 2") {
		t.Fatalf("MaxRecipients 2: jobs %v dlq %+v", summary(out.Jobs), out.DLQ)
	}
}

// TestChangeOutputIsCapped: the jobs of one change are emitted whole or, when
// their subjects and bodies (or template data) pass MaxChangeOutput,
// dead-lettered whole.
func TestChangeOutputIsCapped(t *testing.T) {
	order := func(h *harness) processor.Output {
		h.seed()
		return h.apply(t0, h.change(cdc.LicensePlans, cdc.OpCreate, plan("lp1", "2027-06-30", nil)))
	}
	out := order(newHarness(t))
	size := 0
	for _, j := range out.Jobs {
		size += len(j.Subject) + len(j.HTML) + len(j.Text) + len(j.Data)
	}
	if len(out.Jobs) != 4 || len(out.DLQ) != 0 {
		t.Fatalf("order.new: jobs %v dlq %+v", summary(out.Jobs), out.DLQ)
	}
	cases := []struct {
		limit, jobs int
		dlq         string
	}{
		{size, 4, ""},
		{size - 1, 0, fmt.Sprintf("output cap: 4 jobs of %d bytes from one change (order.new), more than %d", size, size-1)},
		{1, 0, "output cap: 4 jobs"},
	}
	for _, c := range cases {
		out := order(newHarnessConfig(t, processor.Config{MaxChangeOutput: c.limit}))
		if len(out.Jobs) != c.jobs || len(out.Commit.Emitted) != c.jobs {
			t.Errorf("cap %d: %d jobs, %d emitted; want %d", c.limit, len(out.Jobs), len(out.Commit.Emitted), c.jobs)
		}
		switch {
		case c.dlq == "" && len(out.DLQ) != 0:
			t.Errorf("cap %d: dead letters %+v", c.limit, out.DLQ)
		case c.dlq != "" && (len(out.DLQ) != 1 || !strings.HasPrefix(out.DLQ[0].Reason, c.dlq)):
			t.Errorf("cap %d: dead letters %+v, want one starting %q", c.limit, out.DLQ, c.dlq)
		}
	}
}

// TestReplyToAndNamesAreValidatedAsWhatTheyAre: the partner's reply_to is an
// address (a refused one is left out and counted, the email still goes);
// display names cannot carry a second address.
func TestReplyToAndNamesAreValidatedAsWhatTheyAre(t *testing.T) {
	cases := []struct {
		name, replyTo, want string
		refused             int
	}{
		{"valid", "support@direct.example", "support@direct.example", 0},
		{"canonical", " Support@Direct.EXAMPLE", "Support@direct.example", 0},
		{"header injection", "r@direct.example\r\nCc: victim@evil.test", "", 1},
		{"address list", "support@direct.example, attacker@evil.test", "", 1},
		{"quoted comma", `"attacker@evil.test,x"@direct.example`, "", 1},
		{"display name form", "Support <support@direct.example>", "", 1},
		{"not an address", "call us", "", 1},
		{"unset", "", "", 0},
	}
	for _, c := range cases {
		h := newHarness(t)
		h.seed()
		h.apply(t0, h.change(cdc.Partners, cdc.OpUpdate, cdc.Row{"id": "p-direct", "name": "Direct Partner AS", "type": "direct",
			"contact_email": "partner@direct.example", "optional_notifications": []string{"service"},
			"from_name": `Direct" <attacker@evil.test>, "x`, "reply_to": c.replyTo}))
		evil := h.acme()
		evil["name"] = `Acme" <attacker@evil.test>, "Corp`
		h.apply(t0, h.change(cdc.Companies, cdc.OpUpdate, evil))
		out := h.apply(t0, h.change(cdc.Endpoints, cdc.OpCreate, cdc.Row{"id": "e1", "company_id": "c-acme", "name": "Lobby", "enabled": true}))
		if len(out.Jobs) != 2 {
			t.Fatalf("%s: jobs %v dlq %+v", c.name, summary(out.Jobs), out.DLQ)
		}
		if out.Stats.ReplyToRefused != c.refused { // once per email, not per job
			t.Errorf("%s: %d reply-to refused, want %d", c.name, out.Stats.ReplyToRefused, c.refused)
		}
		for _, j := range out.Jobs {
			if j.ReplyTo != c.want {
				t.Errorf("%s: Reply-To %q, want %q", c.name, j.ReplyTo, c.want)
			}
			if strings.ContainsAny(j.To.Name, `",;<>\@`) {
				t.Errorf("%s: display name %q can delimit or pose as an address", c.name, j.To.Name)
			}
			if strings.Count(j.From, "@") != 1 || strings.Count(j.From, "<") != 1 || !strings.HasSuffix(j.From, "<noreply@portalmail.invalid>") {
				t.Errorf("%s: From %q", c.name, j.From)
			}
		}
	}
}

// TestLinkBasesCarryNoSecrets: link bases are mailed to customers; one with
// credentials, a query or a fragment is refused, and the error shows it
// redacted.
func TestLinkBasesCarryNoSecrets(t *testing.T) {
	for _, base := range []string{
		"https://u:S3cret@portal.example", "https://portal.example/?token=S3cret", "https://portal.example/#S3cret",
		"https://u:S3cret%zz@portal.example", "https://u:S3c ret@portal.example", "ftp://u:S3cret@portal.example",
	} {
		err := processor.Config{Links: map[catalog.Site]string{catalog.SitePortal: base}}.Validate()
		if err == nil {
			t.Errorf("link base %q accepted", base)
			continue
		}
		if strings.Contains(err.Error(), "S3c") || strings.Contains(err.Error(), "%zz") {
			t.Errorf("link base %q: error %q shows the secret", base, err)
		}
	}
	if err := (processor.Config{Links: map[catalog.Site]string{catalog.SitePortal: "https://portal.example/base"}}).Validate(); err != nil {
		t.Errorf("a plain link base refused: %v", err)
	}
}
