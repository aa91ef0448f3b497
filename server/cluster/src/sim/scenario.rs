//! Scripted scenarios in the chitchat style: a list of operations run in order, so a test
//! reads as the story it checks.
//!
//! ```
//! use shoal_cluster::sim::{Op, Sim};
//! use std::time::Duration;
//! let mut sim = Sim::cluster(1, 3);
//! sim.script(vec![
//!     Op::WaitFor("formed", Duration::from_secs(2), Box::new(|s: &Sim| s.fully_connected())),
//!     Op::Partition(vec![0], vec![1, 2]),
//!     Op::WaitFor("split", Duration::from_secs(2), Box::new(|s: &Sim| s.view(0).is_empty())),
//!     Op::Heal,
//!     Op::WaitFor("healed", Duration::from_secs(5), Box::new(|s: &Sim| s.fully_connected())),
//! ]);
//! ```
use super::Sim;
use crate::options::SendOptions;
use std::time::Duration;

pub type Check = Box<dyn Fn(&Sim) -> bool>;

pub enum Op {
    AddNode(String),
    Kill(usize),
    Restart(usize),
    /// Graceful leave.
    Stop(usize),
    Partition(Vec<usize>, Vec<usize>),
    Heal,
    Wait(Duration),
    Send {
        from: usize,
        to: Vec<usize>,
        payload: Vec<u8>,
        options: SendOptions,
    },
    /// Runs until the check holds, failing with the label (and the seed) after the limit.
    WaitFor(&'static str, Duration, Check),
    /// Fails with the label (and the seed) unless the check holds now.
    Assert(&'static str, Check),
}

impl Sim {
    /// Runs `ops` in order; a failed wait or assertion panics naming the step and the seed.
    pub fn script(&mut self, ops: Vec<Op>) {
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::AddNode(name) => {
                    self.add_node(&name);
                }
                Op::Kill(i) => self.kill(i),
                Op::Restart(i) => self.restart(i),
                Op::Stop(i) => self.stop(i),
                Op::Partition(a, b) => self.partition(&a, &b),
                Op::Heal => self.heal(),
                Op::Wait(d) => self.run_for(d),
                Op::Send {
                    from,
                    to,
                    payload,
                    options,
                } => {
                    self.send(from, &to, payload, options);
                }
                Op::WaitFor(label, max, check) => {
                    if !self.run_until(max, |s| check(s)) {
                        panic!("seed {}: step {step} '{label}' did not happen within {max:?}; views {:?}", self.seed, self.views());
                    }
                }
                Op::Assert(label, check) => {
                    if !check(self) {
                        panic!(
                            "seed {}: step {step} '{label}' does not hold; views {:?}",
                            self.seed,
                            self.views()
                        );
                    }
                }
            }
        }
    }

    /// Every node's view, for failure messages.
    pub fn views(&self) -> Vec<(String, Vec<String>)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), self.view(i)))
            .collect()
    }
}
