// Package deploy holds no code: it is the module of portalmail's deployment
// files (kubernetes/, grafana/, the Prometheus configuration and alert
// rules), whose tests check them without a cluster:
//
//   - every kustomization (the base and each overlay) renders with
//     kustomize's Go API (krusty), and every object it renders decodes
//     strictly into its API type (k8s.io/api, KEDA's ScaledObject from
//     github.com/kedacore/keda/v2, Strimzi's KafkaConnector as a faithful
//     struct): an unknown or misspelled field fails;
//   - every PORTALMAIL_* variable and flag a Deployment sets exists in
//     `portalmail help <command>` of the command it runs;
//   - probe paths and ports, Services and scrape annotations match what the
//     commands serve (/healthz, /readyz and /metrics on --http-addr);
//   - no secret is inlined: secrets are Secret volumes read through the
//     commands' --*-file flags;
//   - the autoscalers' bounds fit the partition counts, and the Debezium
//     connectors cover exactly the tables of the source contract.
//
// It is its own module so that Kubernetes and kustomize stay out of the main
// go.mod; `make test` runs it (scripts/test.sh).
package deploy
