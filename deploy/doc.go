// Package deploy holds Shoal's deployment artefacts, not code: the systemd
// units (systemd/), the Helm chart (helm/shoal), the Prometheus rules
// (prometheus/) and the Grafana dashboard (grafana/). Its tests check them
// with the validators this machine has (systemd-analyze, promtool, helm)
// and check that every metric they name is one the daemons export.
package deploy
