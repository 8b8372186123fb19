//! The cluster's series of `/metrics`: how many nodes are live, the leases this node holds by kind,
//! and what happened to leases (claims, takeovers, releases, losses), each labelled with the node.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cluster::Cluster;
use crate::prometheus::series;

impl Cluster {
    /// The cluster's series of `/metrics`: live nodes, this node's leases by kind, and the lease
    /// counters.
    pub fn render_metrics(&self, out: &mut String) {
        let node = format!(
            "node=\"{}\"",
            self.settings.node_id.replace(['"', '\\', '\n'], "_")
        );
        let live = if self.is_solo() {
            1
        } else {
            self.live_nodes().len() as u64
        };
        series(
            out,
            "plaza_cluster_nodes_live",
            "gauge",
            "Nodes sharing the database whose heartbeat is recent (1 alone).",
            &[(format!("{{{node}}}"), live)],
        );
        let held: Vec<(String, u64)> = self
            .held_by_kind()
            .iter()
            .map(|(kind, n)| (format!("{{{node},kind=\"{kind}\"}}"), *n))
            .collect();
        series(
            out,
            "plaza_cluster_leases",
            "gauge",
            "Leases this node holds, by kind (alone: none, it holds everything).",
            &held,
        );
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, help, value) in [
            (
                "plaza_cluster_lease_claims_total",
                "Leases this node claimed (takeovers included).",
                load(&self.stats.claimed),
            ),
            (
                "plaza_cluster_lease_takeovers_total",
                "Leases this node claimed after another node let them expire.",
                load(&self.stats.takeovers),
            ),
            (
                "plaza_cluster_leases_released_total",
                "Leases this node gave back (rebalancing, or work that ended).",
                load(&self.stats.released),
            ),
            (
                "plaza_cluster_leases_lost_total",
                "Leases this node lost: taken by another node, or not renewed in time.",
                load(&self.stats.lost),
            ),
        ] {
            series(
                out,
                name,
                "counter",
                help,
                &[(format!("{{{node}}}"), value)],
            );
        }
    }
}
