#!/bin/sh
# A minimal VictoriaMetrics cluster for the national store: the command line of each
# component (put each in its own systemd unit or container; hosts are examples).
# Components: vmstorage keeps the data (sharded by series across its nodes), vminsert takes
# the agents' remote write and spreads it, vmselect answers PromQL/MetricsQL (Grafana,
# `monitord report --source prometheus`), vmalert evaluates the shipped monitord rules.
# Debian's `victoria-metrics` package has the single-node server (enough for a few
# provinces; tests/integration/test_national.py runs it) and vmalert; the cluster binaries
# come from VictoriaMetrics' releases.
set -eu

# 3 x vmstorage (each host): 1 year of data; replication is set on vminsert.
vmstorage -storageDataPath=/var/lib/vmstorage -retentionPeriod=1y \
  -httpListenAddr=:8482 -vminsertAddr=:8400 -vmselectAddr=:8401 \
  -dedup.minScrapeInterval=15s   # drops the second copy if a shard is ever scraped twice

# 2+ x vminsert behind a load balancer: agents write to
#   http://vminsert:8480/insert/0/prometheus/api/v1/write
vminsert -httpListenAddr=:8480 -replicationFactor=2 \
  -storageNode=vms-1:8400,vms-2:8400,vms-3:8400

# 2+ x vmselect: Grafana and reports read from http://vmselect:8481/select/0/prometheus
vmselect -httpListenAddr=:8481 -dedup.minScrapeInterval=15s \
  -storageNode=vms-1:8401,vms-2:8401,vms-3:8401

# vmalert: the shipped rules, unchanged (checked: vmalert -dryRun -rule=...); recording rules
# are written back through vminsert; alerts go to every Alertmanager peer.
vmalert -rule='/etc/monitord/rules/*.yml' \
  -datasource.url=http://vmselect:8481/select/0/prometheus \
  -remoteWrite.url=http://vminsert:8480/insert/0/prometheus \
  -remoteRead.url=http://vmselect:8481/select/0/prometheus \
  -notifier.url=http://am-1:9093 -notifier.url=http://am-2:9093 -notifier.url=http://am-3:9093 \
  -evaluationInterval=15s -external.url=https://grafana.example.go.id
