"""The Qumulo twin: ANQ clusters with snapshots and continuous replication, served over HTTPS on loopback."""
