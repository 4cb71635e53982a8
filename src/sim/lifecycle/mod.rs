//! How runs move on the virtual clock: plan steps, growing logs, results and pull requests at the
//! end, and the resume / ban / unban operations that change a run from outside.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

mod worklog;

use worklog::{base_log, evaluation_log, push_log, push_work_log};

use super::model::{chrono_duration, Pr, Progress, Run, State};
use super::plan::{is_failure, is_stoppable, is_terminal, is_working, RunPlan};

/// Delay between a run starting to work and its first log entry.
pub(crate) const FIRST_LOG_AFTER: chrono::Duration = chrono::Duration::seconds(2);
/// Interval between log entries while a run works.
const LOG_EVERY: chrono::Duration = chrono::Duration::seconds(10);

/// Moves the virtual clock forward and replays every run's plan up to the new time.
pub(crate) fn advance(state: &mut State, d: Duration) {
    state.clock += chrono_duration(d);
    let now = state.clock;
    let ids: Vec<i64> = state.runs.keys().copied().collect();
    for id in ids {
        progress_run(state, id, now);
    }
}

/// What happens next to a run, in time order.
enum Next {
    Log(DateTime<Utc>),
    Step(DateTime<Utc>),
}

fn next_event(run: &Run) -> Option<Next> {
    let plan = run.plan.as_ref()?;
    let step_end = (plan.index + 1 < plan.steps.len())
        .then(|| plan.step_started + chrono_duration(plan.steps[plan.index].hold));
    let log_at = is_working(run.status.as_deref()).then_some(plan.next_log_at);
    match (log_at, step_end) {
        (Some(l), Some(s)) if l < s => Some(Next::Log(l)),
        (_, Some(s)) => Some(Next::Step(s)),
        (Some(l), None) => Some(Next::Log(l)),
        (None, None) => None,
    }
}

fn progress_run(state: &mut State, id: i64, now: DateTime<Utc>) {
    loop {
        let Some(run) = state.runs.get_mut(&id) else {
            return;
        };
        match next_event(run) {
            Some(Next::Log(t)) if t <= now => {
                push_work_log(run, t);
                if let Some(plan) = run.plan.as_mut() {
                    plan.next_log_at = t + LOG_EVERY;
                }
            }
            Some(Next::Step(t)) if t <= now => enter_next_step(state, id, t),
            _ => return,
        }
    }
}

fn enter_next_step(state: &mut State, id: i64, t: DateTime<Utc>) {
    let Some(run) = state.runs.get_mut(&id) else {
        return;
    };
    let Some(plan) = run.plan.as_mut() else {
        return;
    };
    plan.index += 1;
    plan.step_started = t;
    let status = plan.steps[plan.index].status.clone();
    let last = plan.index + 1 == plan.steps.len();
    let was_working = is_working(run.status.as_deref());
    if !was_working && is_working(status.as_deref()) {
        plan.next_log_at = t + FIRST_LOG_AFTER;
    }
    let open_pr = plan.open_pr;
    let result = plan.result.clone();
    if last && !is_working(status.as_deref()) {
        run.plan = None;
    }
    run.set_status(status.clone(), t);
    match status.as_deref() {
        Some("COMPLETE") => complete(state, id, t, open_pr, result),
        Some("EVALUATION") => push_log(run, t, evaluation_log()),
        Some(s) if is_failure(s) => fail(run, t, s),
        _ => {}
    }
}

fn complete(state: &mut State, id: i64, t: DateTime<Utc>, open_pr: bool, result: Option<String>) {
    let Some(run) = state.runs.get_mut(&id) else {
        return;
    };
    let result = result.unwrap_or_else(|| {
        format!(
            "Done: {}. The change is ready for review.",
            run.prompt.trim_end_matches('.')
        )
    });
    run.summary = Some(format!("Worked on \"{}\" and finished.", run.prompt));
    let mut entry = base_log(t, "FINAL_ANSWER");
    entry.observation = Some(json!(result.clone()));
    entry.thought = Some("All checks pass; summarising the work.".to_owned());
    run.logs.push(entry);
    run.result = Some(result);
    if open_pr && run.pr_ids.is_empty() {
        open_pull_request(state, id, t);
    }
}

fn fail(run: &mut Run, t: DateTime<Utc>, status: &str) {
    let why = match status {
        "TIMEOUT" => "The agent run exceeded its time limit.",
        "MAX_ITERATIONS_REACHED" => "The agent reached its maximum number of iterations.",
        "OUT_OF_TOKENS" => "The model context ran out of tokens.",
        _ => "Command `cargo test` failed with exit code 101 in the sandbox.",
    };
    let mut entry = base_log(t, "ERROR");
    entry.tool_name = Some("run_command".to_owned());
    entry.observation = Some(json!(why));
    run.logs.push(entry);
    run.result = Some(why.to_owned());
}

/// Opens a pull request for the run on its repository and attaches it; returns its id.
pub(crate) fn open_pull_request(state: &mut State, run_id: i64, t: DateTime<Utc>) -> i64 {
    let pr_id = state.next_pr_id;
    state.next_pr_id += 1;
    let (org_id, repo_id, prompt) = match state.runs.get(&run_id) {
        Some(r) => (r.org_id, r.repo_id, r.prompt.clone()),
        None => return pr_id,
    };
    let repo_id = repo_id
        .or_else(|| state.org_repos(org_id).next().map(|(id, _)| id))
        .unwrap_or(0);
    let (full_name, number) = match state.repos.get_mut(&repo_id) {
        Some(repo) => {
            repo.next_pr_number += 1;
            (repo.full_name.clone(), repo.next_pr_number)
        }
        None => (format!("org-{org_id}/repo"), pr_id),
    };
    let title: String = prompt.chars().take(60).collect();
    let pr = Pr {
        org_id,
        repo_id,
        number,
        title: format!("Codegen: {title}"),
        url: format!("https://github.com/{full_name}/pull/{number}"),
        head_branch: format!("codegen-bot/run-{run_id}"),
        state: "open".to_owned(),
        banned: false,
        created_at: t,
    };
    state.prs.insert(pr_id, pr);
    if let Some(run) = state.runs.get_mut(&run_id) {
        run.pr_ids.push(pr_id);
    }
    pr_id
}

/// Resume: a running run takes the message as an interrupt; any other run restarts as ACTIVE on
/// a fresh plan to COMPLETE (keeping its pull requests).
pub(crate) fn resume(state: &mut State, run_id: i64, prompt: &str) {
    let now = state.clock;
    let Some(run) = state.runs.get_mut(&run_id) else {
        return;
    };
    let mut entry = base_log(now, "USER_MESSAGE");
    entry.observation = Some(json!(prompt));
    run.logs.push(entry);
    if is_working(run.status.as_deref()) && run.plan.is_some() {
        return;
    }
    let plan = RunPlan::completes();
    run.set_status(plan.first_status(), now);
    run.result = None;
    run.summary = None;
    run.plan = Some(Progress {
        steps: plan.steps,
        index: 0,
        step_started: now,
        next_log_at: now + FIRST_LOG_AFTER,
        open_pr: true,
        result: None,
    });
}

/// Ban / remove-from-pr: flag the run's pull requests (or the run itself when it has none) and
/// cancel every unfinished run on them, the run itself included.
pub(crate) fn ban(state: &mut State, run_id: i64) {
    let now = state.clock;
    let Some(run) = state.runs.get_mut(&run_id) else {
        return;
    };
    let pr_ids = run.pr_ids.clone();
    if pr_ids.is_empty() {
        run.banned = true;
    }
    cancel(run, now);
    for pr_id in &pr_ids {
        if let Some(pr) = state.prs.get_mut(pr_id) {
            pr.banned = true;
        }
    }
    for run in state.runs.values_mut() {
        if run.pr_ids.iter().any(|p| pr_ids.contains(p)) {
            cancel(run, now);
        }
    }
}

/// Unban: clear the flag on the run's pull requests and on the run.
pub(crate) fn unban(state: &mut State, run_id: i64) {
    let Some(run) = state.runs.get_mut(&run_id) else {
        return;
    };
    run.banned = false;
    let pr_ids = run.pr_ids.clone();
    for pr_id in pr_ids {
        if let Some(pr) = state.prs.get_mut(&pr_id) {
            pr.banned = false;
        }
    }
}

/// Whether the run or any of its pull requests is banned.
pub(crate) fn is_banned(state: &State, run: &Run) -> bool {
    run.banned
        || run
            .pr_ids
            .iter()
            .any(|p| state.prs.get(p).is_some_and(|pr| pr.banned))
}

fn cancel(run: &mut Run, now: DateTime<Utc>) {
    if is_stoppable(run.status.as_deref()) {
        run.set_status(Some("CANCELLED".to_owned()), now);
        run.plan = None;
    }
}

/// A direct status override: the run leaves its plan and keeps `status` until changed.
pub(crate) fn override_status(run: &mut Run, status: Option<&str>, now: DateTime<Utc>) {
    run.set_status(status.map(str::to_owned), now);
    run.plan = None;
    if status.is_some_and(is_terminal) && run.result.is_none() {
        run.result = Some(format!("Run ended as {}", status.unwrap_or_default()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::SimConfig;

    fn state_with_repo() -> State {
        let mut state = State::new(SimConfig::default());
        state.repos.insert(
            1,
            super::super::model::Repo {
                org_id: 7,
                full_name: "acme/app".to_owned(),
                archived: false,
                language: None,
                next_pr_number: 0,
                check_suite: super::super::model::default_check_suite(),
            },
        );
        state
    }

    #[test]
    fn default_plan_completes_with_result_and_pr() {
        let mut state = state_with_repo();
        let id = state.insert_run(7, RunPlan::completes());
        advance(&mut state, Duration::from_secs(30));
        let run = &state.runs[&id];
        assert_eq!(run.status.as_deref(), Some("ACTIVE"));
        assert!(run.result.is_none());
        assert_eq!(run.logs.len(), 3, "logs at 2s, 12s, 22s");
        advance(&mut state, Duration::from_secs(40));
        assert_eq!(state.runs[&id].status.as_deref(), Some("EVALUATION"));
        advance(&mut state, Duration::from_secs(10));
        let run = &state.runs[&id];
        assert_eq!(run.status.as_deref(), Some("COMPLETE"));
        assert!(run.result.is_some() && run.summary.is_some());
        assert_eq!(run.pr_ids.len(), 1);
        assert_eq!(
            run.logs.last().map(|l| l.message_type),
            Some("FINAL_ANSWER")
        );
        assert!(run
            .logs
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at));
        let pr = &state.prs[&run.pr_ids[0]];
        assert_eq!(pr.url, "https://github.com/acme/app/pull/1");
    }

    #[test]
    fn failing_plan_leaves_an_error_entry() {
        let mut state = state_with_repo();
        let id = state.insert_run(7, RunPlan::ends("FAILED"));
        advance(&mut state, Duration::from_secs(3600));
        let run = &state.runs[&id];
        assert_eq!(run.status.as_deref(), Some("FAILED"));
        assert_eq!(run.logs.last().map(|l| l.message_type), Some("ERROR"));
        assert!(run.pr_ids.is_empty());
        assert!(run.plan.is_none());
    }

    #[test]
    fn ban_cancels_runs_on_the_same_pr_and_unban_clears_the_flag() {
        let mut state = state_with_repo();
        let parent = state.insert_run(7, RunPlan::completes());
        advance(&mut state, Duration::from_secs(120));
        let pr = state.runs[&parent].pr_ids[0];
        let fixer = state.insert_run(7, RunPlan::completes().on_pr(pr));
        let other = state.insert_run(7, RunPlan::completes());
        ban(&mut state, parent);
        assert_eq!(state.runs[&parent].status.as_deref(), Some("COMPLETE"));
        assert_eq!(state.runs[&fixer].status.as_deref(), Some("CANCELLED"));
        assert_eq!(state.runs[&other].status.as_deref(), Some("ACTIVE"));
        assert!(is_banned(&state, &state.runs[&fixer]));
        unban(&mut state, parent);
        assert!(!is_banned(&state, &state.runs[&parent]));
    }

    #[test]
    fn resume_restarts_a_finished_run_and_logs_the_message() {
        let mut state = state_with_repo();
        let id = state.insert_run(7, RunPlan::completes());
        advance(&mut state, Duration::from_secs(120));
        resume(&mut state, id, "Also update the docs");
        let run = &state.runs[&id];
        assert_eq!(run.status.as_deref(), Some("ACTIVE"));
        assert!(run.result.is_none());
        assert_eq!(
            run.logs.last().map(|l| l.message_type),
            Some("USER_MESSAGE")
        );
        advance(&mut state, Duration::from_secs(120));
        let run = &state.runs[&id];
        assert_eq!(run.status.as_deref(), Some("COMPLETE"));
        assert_eq!(run.pr_ids.len(), 1, "the follow-up reuses the PR");
    }
}
