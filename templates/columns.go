package templates

import (
	"strings"
	"text/template/parse"
	"unicode"
)

// Columns is a set of row column names: the columns of the rows (Entity,
// Previous, Company, Partner, User, Subscription) that the body templates
// read. Job data keeps only these (see RowJSON.Keep); nil means every column.
type Columns map[string]bool

// Columns returns the columns the Set's bodies can read, found in their
// parse trees: every word of every string literal (the column of
// `.Company.Str "name"`, the columns of a details spec such as
// "Entity.end_date|date") and the columns the details spec "Row|person"
// reads (personColumns). It is nil, every column, when a template uses a
// row other than through a method with literal arguments (`.Entity` passed
// whole to a func, `with .Company`, `range .User`): what such a template reads
// cannot be told from its text. The map is shared: do not change it.
func (s *Set) Columns() Columns { return s.columns }

// personColumns are the columns the details spec "Row|person" reads.
var personColumns = [...]string{"full_name", "display_name", "email"}

// rowFields are the fields of Data that hold rows.
var rowFields = map[string]bool{"Entity": true, "Previous": true, "Company": true, "Partner": true, "User": true, "Subscription": true}

// rowMethods are the cdc.Row methods a template may call on a row with
// literal column names.
var rowMethods = map[string]bool{"Str": true, "Int": true, "Bool": true, "Time": true, "Has": true, "Strings": true}

// columnsOf collects the columns trees read into cols; it returns false when
// one of them uses a row whole.
func columnsOf(cols Columns, trees ...*parse.Tree) bool {
	all := true
	for _, t := range trees {
		if t != nil && t.Root != nil && !walkColumns(cols, t.Root) {
			all = false
		}
	}
	return all
}

// walkColumns adds n's string literals' words to cols; false: n uses a row
// whole.
func walkColumns(cols Columns, n parse.Node) bool {
	ok := true
	walk := func(n parse.Node) {
		if n != nil && !walkColumns(cols, n) {
			ok = false
		}
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return true
		}
		for _, c := range n.Nodes {
			walk(c)
		}
	case *parse.ActionNode:
		walk(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return true
		}
		for _, c := range n.Cmds {
			walk(c)
		}
	case *parse.CommandNode:
		for i, a := range n.Args {
			// A row method called with its column: `.Entity.Str "name"` (or
			// `$.Entity.Str "name"`) is a command whose first word is the
			// field chain of the method, its arguments the literals.
			if i == 0 && rowCall(chain(a)) {
				continue
			}
			walk(a)
		}
	case *parse.FieldNode, *parse.VariableNode, *parse.ChainNode:
		// Any other mention of a row: the row used whole.
		if c := chain(n); len(c) > 0 && rowFields[c[0]] {
			return false
		}
		if c, isChain := n.(*parse.ChainNode); isChain {
			walk(c.Node)
		}
	case *parse.StringNode:
		for _, w := range strings.FieldsFunc(n.Text, func(r rune) bool {
			return !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r))
		}) {
			cols[w] = true
		}
	case *parse.IfNode:
		walk(&n.BranchNode)
	case *parse.RangeNode:
		walk(&n.BranchNode)
	case *parse.WithNode:
		walk(&n.BranchNode)
	case *parse.BranchNode:
		walk(n.Pipe)
		walk(n.List)
		walk(n.ElseList)
	case *parse.TemplateNode:
		walk(n.Pipe)
	}
	return ok
}

// rowCall reports whether a field chain is a row method: Entity.Str.
func rowCall(ident []string) bool {
	return len(ident) == 2 && rowFields[ident[0]] && rowMethods[ident[1]]
}

// chain is the field chain a node names from the template's data: .Entity.Str
// is [Entity Str], $.Entity [Entity]; nil for anything else (a variable
// other than $ holds whatever it was given, and a mention of a row in its
// declaration is caught there).
func chain(n parse.Node) []string {
	switch n := n.(type) {
	case *parse.FieldNode:
		return n.Ident
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			return n.Ident[1:]
		}
	case *parse.ChainNode:
		if _, dot := n.Node.(*parse.DotNode); dot {
			return n.Field
		}
		if v, isVar := n.Node.(*parse.VariableNode); isVar && len(v.Ident) == 1 && v.Ident[0] == "$" {
			return n.Field
		}
	}
	return nil
}
