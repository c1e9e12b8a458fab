package stream

import "testing"

func TestReasonClass(t *testing.T) {
	for reason, want := range map[string]string{
		"unknown table portal.public.x":                               ClassUnknownTable,
		"referenced row portal.public.companies/c1 did not arrive in": ClassMissingReference,
		"render subject of trial.company_created: boom":               ClassRender,
		"render trial.company_created: boom":                          ClassRender,
		"park trial.x|…: boom":                                        ClassPark,
		"parked intent k unreadable: eof":                             ClassBadParked,
		"timer of unknown type x":                                     ClassBadTimer,
		`malformed timer member "x"`:                                  ClassBadTimer,
		"undecodable job: short":                                      ClassUndecodableJob,
		"permanent delivery failure: 400":                             ClassPermanentFailure,
		"no valid recipient for branding.active: 2 refused (order_contacts: quoted or escaped local part)": ClassNoRecipient,
		"no valid recipient for trial.user_reminder: no address given":                                     ClassNoRecipient,
		"too many recipients for branding.instructions: 20000, at most 50 (--max-recipients): none sent":   ClassTooMany,
		"output cap: 40 jobs of 5000000 bytes from one change (order.new), more than 4194304":              ClassOutputCap,
		"something new": ClassOther,
	} {
		if got := ReasonClass(reason); got != want {
			t.Errorf("ReasonClass(%q) = %s, want %s", reason, got, want)
		}
	}
}
