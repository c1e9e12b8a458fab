package catalog

import (
	"fmt"
	"io"
	"strings"
)

// Describe renders a trigger in words, as the catalog table shows it.
func Describe(t Trigger) string {
	short := func(table string) string { return table[strings.LastIndex(table, ".")+1:] }
	conds := func(cs []Cond) string {
		var parts []string
		for _, c := range cs {
			op := "="
			if c.Not {
				op = "≠"
			}
			parts = append(parts, fmt.Sprintf("%s %s %s", c.Field, op, strings.Join(c.In, "|")))
		}
		if len(parts) == 0 {
			return ""
		}
		return " while " + strings.Join(parts, " and ")
	}
	switch t := t.(type) {
	case Transition:
		var parts []string
		if t.Create {
			s := short(t.Table) + " created"
			if t.Field != "" && len(t.To) > 0 {
				s += " with " + t.Field + " " + strings.Join(t.To, "|")
			}
			parts = append(parts, s)
		}
		if t.Field != "" {
			s := short(t.Table) + "." + t.Field
			switch t.Change {
			case ValueIn:
				from, to := "*", "*"
				if len(t.From) > 0 {
					from = strings.Join(t.From, "|")
				}
				if len(t.To) > 0 {
					to = strings.Join(t.To, "|")
				}
				if from == "*" && to == "*" {
					s += " changed"
				} else {
					s += " " + from + " → " + to
				}
			case SetOrMoved:
				s += " set or moved"
			case FirstSet:
				s += " set for the first time"
			case MovedLater:
				s += " moved later"
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ", or ") + conds(t.Where)
	case Threshold:
		lvl := "≥ 80%"
		if t.Level == LevelOver {
			lvl = "> 100%"
		}
		return fmt.Sprintf("threshold: %s.%s %s of %s.%s (capacity ≥ %d)", short(t.Table), t.Value, lvl,
			short(t.CapacityTable), t.CapacityField, t.MinCapacity)
	case Timer:
		dir := "−"
		if t.After {
			dir = "+"
		}
		var ds []string
		for _, d := range t.Days {
			ds = append(ds, fmt.Sprintf("%s%d d", dir, d))
		}
		return fmt.Sprintf("timer: %s.%s %s at 09:00", short(t.Table), t.DateField, strings.Join(ds, ", ")) + conds(t.While)
	}
	return "?"
}

// DescribeRecipients renders a recipient policy, "*" marking the
// reseller-under-distributor rule on partner_am.
func DescribeRecipients(r Recipients) string {
	var parts []string
	for _, role := range r.Roles {
		s := string(role)
		if role == RolePartnerAM && r.SkipPartnerAMIfResellerUnderDistributor {
			s += "*"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// WriteTable writes the catalog as a markdown table in catalog order.
func WriteTable(w io.Writer, c Catalog) error {
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	if _, err := fmt.Fprintln(w, "| id | spec subject | trigger | recipients |\n|---|---|---|---|"); err != nil {
		return err
	}
	for _, t := range c {
		if _, err := fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.ID, esc(t.SpecSubject), esc(Describe(t.Trigger)), esc(DescribeRecipients(t.Recipients))); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, "\n\\* partner_am is left out where the company's partner is a reseller under a distributor.")
	return err
}
