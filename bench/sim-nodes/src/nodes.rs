//! The simulated Nodes themselves: registered, tainted so that no pod lands there, and kept
//! Ready as a kubelet would keep them (its `kube-node-lease` Lease renewed, its Ready status
//! posted again).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use std::time::Duration;

/// The label every simulated Node carries (the benchmark deletes them by it), and the key of
/// its taint.
const SIMULATED: &str = "seccomp-operator.dev/simulated";
/// Field manager of the simulator's writes to Nodes and their Leases.
const MANAGER: &str = crds::apply::SIM_NODES;

/// The names of `count` simulated nodes: `prefix` and a three-digit number from 1.
pub fn names(prefix: &str, count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("{prefix}{i:03}")).collect()
}

/// The Node `name` as the simulator applies it: labelled simulated, tainted NoSchedule.
fn node(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            SIMULATED: "true",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        }},
        "spec": {"taints": [{"key": SIMULATED, "value": "true", "effect": "NoSchedule"}]},
    })
}

/// Create (or update) the Node `name`: Ready, tainted so that no pod is scheduled there.
pub async fn register(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&node(name)),
    )
    .await?;
    set_ready(&api, name).await?;
    renew(client, name).await?;
    Ok(())
}

/// The Node's status as a kubelet would post it: Ready, with capacity.
async fn set_ready(api: &Api<Node>, name: &str) -> anyhow::Result<()> {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = serde_json::json!({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "simulated node (seccomp-operator scale benchmark)",
            "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"},
        "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
            "kubeletVersion": "v1.37.2", "kubeProxyVersion": "v1.37.2",
            "containerRuntimeVersion": "containerd://2.2.9", "osImage": "simulated",
            "kernelVersion": "simulated", "machineID": "", "systemUUID": "", "bootID": ""},
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// The node's Lease in `kube-node-lease`, renewed now.
fn lease(name: &str) -> anyhow::Result<serde_json::Value> {
    let lease = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([(SIMULATED.to_owned(), "true".to_owned())].into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_owned()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..Default::default()
        }),
    };
    let mut v = serde_json::to_value(&lease)?;
    v["apiVersion"] = "coordination.k8s.io/v1".into();
    v["kind"] = "Lease".into();
    Ok(v)
}

/// Renew the node's Lease in `kube-node-lease` (what keeps a node Ready for the node
/// lifecycle controller).
async fn renew(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&lease(name)?),
    )
    .await?;
    Ok(())
}

/// Renewals and status posts in flight at once: one after another, 99 renewals against an API
/// server busy with a burst took longer than the node monitor's grace period, and nodes went
/// `Ready=Unknown` while their "kubelet" was fine.
const PARALLEL: usize = 16;

/// Every 10 s renew each node's Lease; every minute post its Ready status again.
pub async fn keep_ready(client: Client, names: Vec<String>) {
    use futures::StreamExt;
    let api: Api<Node> = Api::all(client.clone());
    for round in 0u64.. {
        tokio::time::sleep(Duration::from_secs(10)).await;
        futures::stream::iter(&names)
            .for_each_concurrent(PARALLEL, |n| {
                let (client, api) = (&client, &api);
                async move {
                    if let Err(e) = renew(client, n).await {
                        tracing::warn!(node = %n, error = %format_args!("{e:#}"), "renewing the node Lease failed");
                    }
                    if round % 6 == 5 {
                        if let Err(e) = set_ready(api, n).await {
                            tracing::warn!(node = %n, error = %format_args!("{e:#}"), "posting the node status failed");
                        }
                    }
                }
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_numbered_from_one_with_three_digits() {
        assert_eq!(
            names("sim-node-", 3),
            ["sim-node-001", "sim-node-002", "sim-node-003"]
        );
        assert_eq!(names("n", 1000).last().unwrap(), "n1000");
        assert!(names("n", 0).is_empty());
    }

    #[test]
    fn a_simulated_node_is_labelled_and_keeps_pods_off() {
        let n = node("sim-node-007");
        assert_eq!(n["metadata"]["name"], "sim-node-007");
        assert_eq!(n["metadata"]["labels"][SIMULATED], "true");
        assert_eq!(
            n["metadata"]["labels"]["kubernetes.io/hostname"],
            "sim-node-007"
        );
        let taints = n["spec"]["taints"].as_array().unwrap();
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0]["key"], SIMULATED);
        assert_eq!(taints[0]["effect"], "NoSchedule");
    }

    #[test]
    fn its_lease_is_held_by_the_node_and_labelled_simulated() {
        let l = lease("sim-node-001").unwrap();
        assert_eq!(l["apiVersion"], "coordination.k8s.io/v1");
        assert_eq!(l["kind"], "Lease");
        assert_eq!(l["metadata"]["labels"][SIMULATED], "true");
        assert_eq!(l["spec"]["holderIdentity"], "sim-node-001");
        assert_eq!(l["spec"]["leaseDurationSeconds"], 40);
        assert!(l["spec"]["renewTime"].is_string());
    }
}
