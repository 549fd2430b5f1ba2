//! `orderer admin status` output: the typed `StatusReply` as JSON (`--json`, for scripts and
//! tests) or as a table (for people).

use ordo_proto::ordo::{GroupStatus, RaftState, StatusReply};
use serde::{Deserialize, Serialize};

/// A node's view of its channels' Raft groups, as `--json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    pub groups: Vec<GroupView>,
}

/// One channel's Raft group; the fields are those of the proto `GroupStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub channel: String,
    pub node_id: u64,
    /// "leader", "follower", "candidate", "learner", "shutdown" or "unknown".
    pub state: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub stored_end: u64,
    pub quorum: bool,
    pub millis_since_quorum_ack: Option<u64>,
    pub millis_since_leader_heard: Option<u64>,
    pub quorum_detail: String,
    pub pre_votes_won: u64,
    pub pre_votes_lost: u64,
}

/// The lower-case name of a Raft state, as the JSON and the table show it.
pub fn state_name(state: i32) -> &'static str {
    match RaftState::try_from(state) {
        Ok(RaftState::Leader) => "leader",
        Ok(RaftState::Follower) => "follower",
        Ok(RaftState::Candidate) => "candidate",
        Ok(RaftState::Learner) => "learner",
        Ok(RaftState::Shutdown) => "shutdown",
        Ok(RaftState::Unspecified) | Err(_) => "unknown",
    }
}

impl From<&GroupStatus> for GroupView {
    fn from(g: &GroupStatus) -> Self {
        GroupView {
            channel: g.channel.clone(),
            node_id: g.node_id,
            state: state_name(g.state).to_string(),
            term: g.term,
            leader: g.leader,
            voters: g.voters.clone(),
            learners: g.learners.clone(),
            last_log_index: g.last_log_index,
            committed_index: g.committed_index,
            applied_index: g.applied_index,
            stored_end: g.stored_end,
            quorum: g.quorum,
            millis_since_quorum_ack: g.millis_since_quorum_ack,
            millis_since_leader_heard: g.millis_since_leader_heard,
            quorum_detail: g.quorum_detail.clone(),
            pre_votes_won: g.pre_votes_won,
            pre_votes_lost: g.pre_votes_lost,
        }
    }
}

impl From<&StatusReply> for StatusView {
    fn from(reply: &StatusReply) -> Self {
        StatusView {
            groups: reply.groups.iter().map(GroupView::from).collect(),
        }
    }
}

impl StatusView {
    /// One line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a status serializes")
    }

    /// A table with a header line and one line per channel.
    pub fn to_table(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let ids = |v: &[u64]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
            }
        };
        let header = [
            "CHANNEL",
            "NODE",
            "STATE",
            "TERM",
            "LEADER",
            "VOTERS",
            "LEARNERS",
            "LAST",
            "COMMITTED",
            "APPLIED",
            "STORED",
            "PRE-VOTES",
            "QUORUM",
        ];
        let mut rows = vec![header.map(str::to_string).to_vec()];
        for g in &self.groups {
            rows.push(vec![
                g.channel.clone(),
                g.node_id.to_string(),
                g.state.clone(),
                g.term.to_string(),
                opt(g.leader),
                ids(&g.voters),
                ids(&g.learners),
                opt(g.last_log_index),
                opt(g.committed_index),
                opt(g.applied_index),
                g.stored_end.to_string(),
                format!("{}/{}", g.pre_votes_won, g.pre_votes_lost),
                format!("{} ({})", g.quorum, g.quorum_detail),
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, &w)| format!("{cell:w$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> StatusReply {
        StatusReply {
            groups: vec![GroupStatus {
                channel: "ordo".into(),
                node_id: 1,
                state: RaftState::Leader as i32,
                term: 3,
                leader: Some(1),
                voters: vec![1, 2, 3],
                learners: vec![],
                last_log_index: Some(20),
                committed_index: Some(20),
                applied_index: Some(19),
                stored_end: 21,
                quorum: true,
                millis_since_quorum_ack: Some(12),
                millis_since_leader_heard: None,
                quorum_detail: "quorum acked 12 ms ago".into(),
                pre_votes_won: 1,
                pre_votes_lost: 0,
            }],
        }
    }

    #[test]
    fn json_has_every_field_and_reads_back() {
        let view = StatusView::from(&reply());
        let json = view.to_json();
        assert!(json.contains(r#""state":"leader""#), "{json}");
        assert!(json.contains(r#""voters":[1,2,3]"#), "{json}");
        assert!(
            json.contains(r#""millis_since_leader_heard":null"#),
            "{json}"
        );
        let back: StatusView = serde_json::from_str(&json).unwrap();
        assert_eq!(back, view);
    }

    #[test]
    fn table_has_a_header_and_a_line_per_channel() {
        let table = StatusView::from(&reply()).to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[0].starts_with("CHANNEL"), "{table}");
        assert!(lines[1].starts_with("ordo"), "{table}");
        assert!(lines[1].contains("1,2,3"), "{table}");
        assert!(
            lines[1].ends_with("true (quorum acked 12 ms ago)"),
            "{table}"
        );
        assert_eq!(state_name(99), "unknown");
    }
}
