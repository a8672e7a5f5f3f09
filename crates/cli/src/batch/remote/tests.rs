//! The Batch API path against a fake Batch API that counts every request submitted: results
//! written as interactive ones are, the journal's order, re-attaching by display name, and
//! resubmitting only what a failed job left unfinished.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use imagegate_core::{
    Error, ErrorKind, GenerateRequest, GenerateResponse, Priority, ServedBy, quota::Limits,
    quota::PoolId,
};
use imagegate_router::{MaxWait, Router, Target};
use serde_json::Value;

use super::*;
use crate::batch::api::{RemoteJob, RemoteResult, RemoteState};
use crate::batch::input::{Format, References, parse};
use crate::batch::journal::{FILE_NAME, Journal, Replay};
use crate::batch::runner::{Backend, Settings, run};
use crate::batch::summary::Summary;

const MODEL: &str = "gemini-2.5-flash-image";

#[derive(Debug)]
struct FakeJob {
    name: String,
    display: String,
    model: String,
    requests: Vec<(String, GenerateRequest)>,
    polls: u32,
    /// Where it ends.
    ends: RemoteState,
}

/// A Batch API in memory: a job runs on the second poll and ends on the third.
#[derive(Debug, Default)]
struct Fake {
    jobs: Mutex<Vec<FakeJob>>,
    /// Display names whose job expires instead of succeeding.
    expire: Mutex<Vec<String>>,
    /// Polls answer 401 (a revoked key) while set.
    refuse_polls: Mutex<bool>,
    /// The next results fetch is cut off after its first result (a dropped download).
    cut_results: Mutex<bool>,
}

impl Fake {
    /// Every key submitted, with how many times.
    fn submitted(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for job in self.jobs.lock().unwrap().iter() {
            for (key, _) in &job.requests {
                *counts.entry(key.clone()).or_default() += 1;
            }
        }
        counts
    }

    fn creates(&self) -> usize {
        self.jobs.lock().unwrap().len()
    }

    fn view(job: &FakeJob) -> RemoteJob {
        let state = match job.polls {
            0 => RemoteState::Pending,
            1 => RemoteState::Running,
            _ => job.ends,
        };
        RemoteJob {
            name: job.name.clone(),
            state,
            total: job.requests.len() as u64,
            finished: if state.is_terminal() {
                job.requests.len() as u64
            } else {
                0
            },
            handle: None,
        }
    }

    /// A job an earlier run made: already on the server.
    fn seed(&self, display: &str, keys: &[&str], ends: RemoteState) -> String {
        let mut jobs = self.jobs.lock().unwrap();
        let name = format!("batches/seeded-{}", jobs.len());
        jobs.push(FakeJob {
            name: name.clone(),
            display: display.to_owned(),
            model: MODEL.to_owned(),
            requests: keys
                .iter()
                .map(|k| ((*k).to_owned(), GenerateRequest::new(format!("seeded {k}"))))
                .collect(),
            polls: 0,
            ends,
        });
        name
    }
}

#[async_trait]
impl BatchApi for Fake {
    async fn create(
        &self,
        model: &str,
        display_name: &str,
        requests: &[(String, GenerateRequest)],
    ) -> Result<RemoteJob, Error> {
        let ends = if self
            .expire
            .lock()
            .unwrap()
            .iter()
            .any(|d| d == display_name)
        {
            RemoteState::Expired
        } else {
            RemoteState::Succeeded
        };
        let mut jobs = self.jobs.lock().unwrap();
        let job = FakeJob {
            name: format!("batches/{}", jobs.len()),
            display: display_name.to_owned(),
            model: model.to_owned(),
            requests: requests.to_vec(),
            polls: 0,
            ends,
        };
        let view = Fake::view(&job);
        jobs.push(job);
        Ok(view)
    }

    async fn get(&self, name: &str) -> Result<RemoteJob, Error> {
        if *self.refuse_polls.lock().unwrap() {
            return Err(Error::new(ErrorKind::Unauthorized, "the key was revoked"));
        }
        let mut jobs = self.jobs.lock().unwrap();
        let job = jobs
            .iter_mut()
            .find(|j| j.name == name)
            .ok_or_else(|| Error::new(ErrorKind::InvalidRequest, "no such job"))?;
        job.polls += 1;
        Ok(Fake::view(job))
    }

    async fn find(&self, display_name: &str) -> Result<Option<RemoteJob>, Error> {
        let jobs = self.jobs.lock().unwrap();
        Ok(jobs
            .iter()
            .find(|j| j.display == display_name)
            .map(Fake::view))
    }

    async fn results(
        &self,
        job: &RemoteJob,
        each: &mut (dyn FnMut(RemoteResult) + Send),
    ) -> Result<usize, Error> {
        let results: Vec<RemoteResult> = {
            let jobs = self.jobs.lock().unwrap();
            let job = jobs.iter().find(|j| j.name == job.name).unwrap();
            job.requests
                .iter()
                .map(|(key, request)| {
                    let outcome = if request.prompt.contains("forbidden") {
                        Err(Error::new(ErrorKind::ContentBlocked, "blocked by the fake"))
                    } else {
                        let image =
                            imagegate_mock::render::render_image(&job.model, request, 0).unwrap();
                        Ok(GenerateResponse::new(
                            vec![image],
                            ServedBy::new("gemini", &job.model, None),
                        ))
                    };
                    RemoteResult {
                        key: key.clone(),
                        outcome,
                    }
                })
                .collect()
        };
        let n = results.len();
        if std::mem::take(&mut *self.cut_results.lock().unwrap()) {
            results.into_iter().take(1).for_each(each);
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the download was cut off",
            ));
        }
        results.into_iter().for_each(each);
        Ok(n)
    }
}

fn backend() -> Backend {
    let pool = imagegate_core::quota::PoolConfig::new(
        PoolId::new("mock", "test", MODEL),
        Limits::default(),
        jiff::tz::TimeZone::UTC,
    );
    let router = Router::builder(Arc::new(imagegate_core::clock::SystemClock))
        .target(Target::new(
            "mock",
            Arc::new(imagegate_mock::MockProvider::new()),
            MODEL,
            pool,
        ))
        .build()
        .unwrap();
    Backend {
        router,
        route: imagegate_router::DEFAULT_ROUTE.to_owned(),
    }
}

/// Runs `input` (text, one prompt a line) in `dir` through the Batch API path alone.
async fn batch_run(dir: &Path, input: &str, api: Arc<Fake>) -> Summary {
    batch_run_within(dir, input, api, None).await
}

/// [`batch_run`] with `--max-cost`.
async fn batch_run_within(
    dir: &Path,
    input: &str,
    api: Arc<Fake>,
    max_cost_usd: Option<f64>,
) -> Summary {
    let parsed = parse(input.as_bytes(), Format::Text, dir, References::Inside);
    let replay = Replay::read(&dir.join(FILE_NAME)).unwrap();
    let jobs = parsed
        .jobs
        .iter()
        .map(|job| {
            let history = replay.jobs.get(&job.key).cloned().unwrap_or_default();
            (job.clone(), history)
        })
        .collect();
    let live = replay.live_batches().cloned().collect();
    let journal = Journal::open(dir).unwrap();
    let settings = Settings {
        out_dir: dir.to_path_buf(),
        concurrency: 2,
        max_cost_usd,
        priority: Priority::Background,
        grace: Duration::from_secs(1),
        model: None,
        rescue_dir: dir.join("rescued"),
        max_wait: MaxWait::Windows,
        spill: None,
    };
    let remote = RemoteWork {
        settings: RemoteSettings {
            api,
            provider: "gemini".to_owned(),
            model: MODEL.to_owned(),
            // The defaults: paused time makes the waits free, and proves nothing hangs on them.
            poll_interval: Duration::from_secs(30),
            max_poll_interval: Duration::from_secs(300),
            job_size: 2,
            prices: imagegate_core::registry::price_table(crate::providers::PROVIDERS),
            run_id: "imagegate-test".to_owned(),
        },
        jobs,
        live,
    };
    run(
        backend(),
        journal,
        settings,
        Vec::new(),
        Some(remote),
        Summary::default(),
    )
    .await
    .unwrap()
}

fn journal(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join(FILE_NAME))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events<'a>(journal: &'a [Value], event: &str) -> Vec<&'a Value> {
    journal.iter().filter(|r| r["event"] == event).collect()
}

fn pngs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    names
}

#[tokio::test(start_paused = true)]
async fn images_come_back_under_their_stable_names_and_the_job_is_journaled_before_it_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let summary = batch_run(
        dir.path(),
        "a red kite\na blue boat\na green hill\n",
        fake.clone(),
    )
    .await;
    assert!(summary.complete(), "{:?}", summary.failed);
    assert_eq!(
        pngs(dir.path()),
        [
            "1-a-red-kite.png",
            "2-a-blue-boat.png",
            "3-a-green-hill.png"
        ]
    );
    // The bytes are the batch result's, written as an interactive image is.
    let expected = imagegate_mock::render::render_image(
        MODEL,
        &GenerateRequest::new("a blue boat")
            .with_priority(Priority::Background)
            .with_count(1),
        0,
    )
    .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("2-a-blue-boat.png")).unwrap(),
        expected.bytes.to_vec()
    );
    assert_eq!(summary.images_via_batch, 3);
    assert_eq!(summary.images_written, 3);
    // Two jobs of at most two images; every key once.
    assert_eq!(fake.creates(), 2);
    assert!(
        fake.submitted().values().all(|n| *n == 1),
        "{:?}",
        fake.submitted()
    );
    assert_eq!(fake.submitted().len(), 3);
    let journal = journal(dir.path());
    let order: Vec<&str> = journal
        .iter()
        .filter(|r| r["batch"] == "imagegate-test-1")
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["batch_planned", "batch_created", "batch_ended"]);
    assert_eq!(events(&journal, "written").len(), 3);
    assert_eq!(events(&journal, "done").len(), 3);
    // Half the interactive price.
    assert!((summary.batch_cost_usd - 3.0 * 0.039 / 2.0).abs() < 1e-9);
    assert!((summary.cost_usd - summary.batch_cost_usd).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn a_job_created_but_never_recorded_is_found_by_its_display_name_not_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    // An earlier run journaled the plan, the server made the job, the run died before
    // recording its name.
    fake.seed("imagegate-old-1", &["1#0", "2#0"], RemoteState::Succeeded);
    let journal_file = Journal::open(dir.path()).unwrap();
    journal_file
        .append(Record::BatchPlanned {
            batch: "imagegate-old-1".to_owned(),
            provider: "gemini".to_owned(),
            model: MODEL.to_owned(),
            images: ["1", "2"]
                .iter()
                .map(|j| ImageKey {
                    job: (*j).to_owned(),
                    image: 0,
                })
                .collect(),
        })
        .unwrap();
    drop(journal_file);
    let summary = batch_run(dir.path(), "a red kite\na blue boat\n", fake.clone()).await;
    assert!(summary.complete(), "{:?}", summary.failed);
    assert_eq!(fake.creates(), 1, "nothing new was created");
    assert_eq!(pngs(dir.path()).len(), 2);
    let journal = journal(dir.path());
    let created = events(&journal, "batch_created");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["name"], "batches/seeded-0");
}

#[tokio::test(start_paused = true)]
async fn a_planned_job_the_server_never_made_is_sent_once_more() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    Journal::open(dir.path())
        .unwrap()
        .append(Record::BatchPlanned {
            batch: "imagegate-old-1".to_owned(),
            provider: "gemini".to_owned(),
            model: MODEL.to_owned(),
            images: vec![ImageKey {
                job: "1".to_owned(),
                image: 0,
            }],
        })
        .unwrap();
    let summary = batch_run(dir.path(), "a red kite\n", fake.clone()).await;
    assert!(summary.complete(), "{:?}", summary.failed);
    assert_eq!(fake.creates(), 1);
    assert_eq!(fake.submitted()["1#0"], 1);
    let journal = journal(dir.path());
    let ended = events(&journal, "batch_ended");
    assert_eq!(ended[0]["batch"], "imagegate-old-1");
    assert_eq!(ended[0]["state"], "not_created");
}

#[tokio::test(start_paused = true)]
async fn an_expired_job_is_sent_again_only_for_its_images_without_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let name = fake.seed("imagegate-old-1", &["1#0", "2#0"], RemoteState::Expired);
    // Image 1 came from elsewhere before the job expired (an interactive rerun, say).
    let image = imagegate_mock::render::render_image(MODEL, &GenerateRequest::new("x"), 0).unwrap();
    std::fs::write(dir.path().join("1-a-red-kite.png"), &image.bytes).unwrap();
    let journal_file = Journal::open(dir.path()).unwrap();
    for record in [
        Record::BatchPlanned {
            batch: "imagegate-old-1".to_owned(),
            provider: "gemini".to_owned(),
            model: MODEL.to_owned(),
            images: ["1", "2"]
                .iter()
                .map(|j| ImageKey {
                    job: (*j).to_owned(),
                    image: 0,
                })
                .collect(),
        },
        Record::BatchCreated {
            batch: "imagegate-old-1".to_owned(),
            name,
        },
        Record::Written {
            job: "1".to_owned(),
            image: 0,
            path: "1-a-red-kite.png".to_owned(),
            recovered: false,
        },
    ] {
        journal_file.append(record).unwrap();
    }
    drop(journal_file);
    let summary = batch_run(dir.path(), "a red kite\na blue boat\n", fake.clone()).await;
    assert!(summary.complete(), "{:?}", summary.failed);
    assert_eq!(fake.creates(), 2, "one new job");
    let jobs = fake.jobs.lock().unwrap();
    let keys: Vec<&str> = jobs[1].requests.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["2#0"], "only the image without a result");
    drop(jobs);
    assert_eq!(pngs(dir.path()), ["1-a-red-kite.png", "2-a-blue-boat.png"]);
    let journal = journal(dir.path());
    let ended: Vec<(&str, &str)> = events(&journal, "batch_ended")
        .iter()
        .map(|r| (r["batch"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ended,
        [
            ("imagegate-old-1", "expired"),
            ("imagegate-test-1", "succeeded")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_fails_its_job_alone_and_a_rerun_sends_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let input = "a red kite\na forbidden thing\n";
    let summary = batch_run(dir.path(), input, fake.clone()).await;
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].kind, "content_blocked");
    assert_eq!(summary.failed[0].job, "2");
    assert_eq!(pngs(dir.path()), ["1-a-red-kite.png"]);
    let again = batch_run(dir.path(), input, fake.clone()).await;
    assert_eq!(again.failed.len(), 1);
    let submitted = fake.submitted();
    assert_eq!(
        submitted["1#0"], 1,
        "the finished image is never sent again"
    );
    assert_eq!(submitted["2#0"], 2, "the refused one is, on the rerun");
}

#[tokio::test(start_paused = true)]
async fn an_expired_job_in_this_run_is_resubmitted_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    fake.expire
        .lock()
        .unwrap()
        .push("imagegate-test-1".to_owned());
    let summary = batch_run(dir.path(), "a red kite\n", fake.clone()).await;
    assert!(summary.complete(), "{:?}", summary.failed);
    assert_eq!(fake.creates(), 2);
    assert_eq!(fake.submitted()["1#0"], 2);
    assert_eq!(pngs(dir.path()), ["1-a-red-kite.png"]);
}

#[tokio::test(start_paused = true)]
async fn under_auto_jobs_the_pools_refuse_for_their_daily_quota_spill_to_the_batch_api() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let clock: Arc<dyn imagegate_core::clock::Clock> = Arc::new(imagegate_core::clock::SystemClock);
    let upstream = Arc::new(
        imagegate_mock::ScriptedProvider::new("gemini", Arc::clone(&clock))
            .with_default_model(MODEL)
            .otherwise(imagegate_mock::Outcome::error(Error::new(
                ErrorKind::QuotaExhausted,
                "requests per day used up",
            ))),
    );
    let pool = imagegate_core::quota::PoolConfig::new(
        PoolId::new("gemini", "test", MODEL),
        Limits::default(),
        jiff::tz::TimeZone::UTC,
    );
    let router = Router::builder(clock)
        .target(Target::new("gemini", upstream.clone(), MODEL, pool))
        .build()
        .unwrap();
    let backend = Backend {
        router,
        route: imagegate_router::DEFAULT_ROUTE.to_owned(),
    };
    let parsed = parse(
        b"a red kite\na blue boat\n",
        Format::Text,
        dir.path(),
        References::Inside,
    );
    let jobs = parsed
        .jobs
        .iter()
        .map(|job| (job.clone(), JobHistory::default()))
        .collect();
    let settings = Settings {
        out_dir: dir.path().to_path_buf(),
        concurrency: 1,
        max_cost_usd: None,
        priority: Priority::Background,
        grace: Duration::from_secs(1),
        model: None,
        rescue_dir: dir.path().join("rescued"),
        max_wait: MaxWait::Windows,
        spill: Some(RemoteSettings {
            api: fake.clone(),
            provider: "gemini".to_owned(),
            model: MODEL.to_owned(),
            // The defaults: paused time makes the waits free, and proves nothing hangs on them.
            poll_interval: Duration::from_secs(30),
            max_poll_interval: Duration::from_secs(300),
            job_size: 10,
            prices: imagegate_core::registry::price_table(crate::providers::PROVIDERS),
            run_id: "imagegate-spill".to_owned(),
        }),
    };
    let summary = run(
        backend,
        Journal::open(dir.path()).unwrap(),
        settings,
        jobs,
        None,
        Summary::default(),
    )
    .await
    .unwrap();
    assert!(summary.complete(), "{:?}", summary.failed);
    assert!(
        upstream.call_count() >= 1,
        "the interactive pool was tried first"
    );
    assert_eq!(fake.creates(), 1);
    assert_eq!(fake.submitted().len(), 2);
    assert_eq!(summary.images_via_batch, 2);
    assert_eq!(pngs(dir.path()), ["1-a-red-kite.png", "2-a-blue-boat.png"]);
}

#[tokio::test(start_paused = true)]
async fn a_poll_refused_for_good_keeps_the_job_live_and_a_rerun_re_attaches_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    *fake.refuse_polls.lock().unwrap() = true;
    let first = batch_run(dir.path(), "a red kite\n", fake.clone()).await;
    assert_eq!(first.failed.len(), 1);
    assert_eq!(first.failed[0].kind, "batch_unreachable");
    assert!(
        first.failed[0].advice.contains("re-attached"),
        "{:?}",
        first.failed
    );
    assert!(
        events(&journal(dir.path()), "batch_ended").is_empty(),
        "still live"
    );
    *fake.refuse_polls.lock().unwrap() = false;
    let again = batch_run(dir.path(), "a red kite\n", fake.clone()).await;
    assert!(again.complete(), "{:?}", again.failed);
    assert_eq!(fake.creates(), 1, "re-attached, not created again");
    assert_eq!(pngs(dir.path()), ["1-a-red-kite.png"]);
}

#[tokio::test(start_paused = true)]
async fn an_image_renamed_into_place_before_a_kill_is_adopted_when_the_job_is_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let name = fake.seed("imagegate-old-1", &["1#0", "2#0"], RemoteState::Succeeded);
    // The earlier run wrote image 1 and died before its `written` record.
    let earlier =
        imagegate_mock::render::render_image(MODEL, &GenerateRequest::new("x"), 0).unwrap();
    std::fs::write(dir.path().join("1-a-red-kite.png"), &earlier.bytes).unwrap();
    let journal_file = Journal::open(dir.path()).unwrap();
    for record in [
        Record::BatchPlanned {
            batch: "imagegate-old-1".to_owned(),
            provider: "gemini".to_owned(),
            model: MODEL.to_owned(),
            images: ["1", "2"]
                .iter()
                .map(|j| ImageKey {
                    job: (*j).to_owned(),
                    image: 0,
                })
                .collect(),
        },
        Record::BatchCreated {
            batch: "imagegate-old-1".to_owned(),
            name,
        },
    ] {
        journal_file.append(record).unwrap();
    }
    drop(journal_file);
    let summary = batch_run(dir.path(), "a red kite\na blue boat\n", fake.clone()).await;
    assert!(summary.complete(), "{:?}", summary.failed);
    assert_eq!(fake.creates(), 1, "nothing sent again");
    assert_eq!(summary.images_recovered, 1);
    assert_eq!(summary.images_written, 1);
    assert_eq!(
        pngs(dir.path()),
        ["1-a-red-kite.png", "2-a-blue-boat.png"],
        "no second copy beside the adopted one"
    );
    assert_eq!(
        std::fs::read(dir.path().join("1-a-red-kite.png")).unwrap(),
        earlier.bytes.to_vec()
    );
}

#[tokio::test(start_paused = true)]
async fn a_results_download_cut_off_midway_is_fetched_again_and_no_image_is_written_twice() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    *fake.cut_results.lock().unwrap() = true;
    let summary = batch_run(dir.path(), "a red kite\na blue boat\n", fake.clone()).await;
    assert!(summary.complete(), "{:?}", summary.failed);
    assert_eq!(summary.images_written, 2);
    assert_eq!(pngs(dir.path()), ["1-a-red-kite.png", "2-a-blue-boat.png"]);
    assert_eq!(events(&journal(dir.path()), "written").len(), 2);
    assert_eq!(fake.creates(), 1);
}

#[tokio::test(start_paused = true)]
async fn max_cost_counts_batch_images_at_the_batch_price_and_submits_only_what_fits() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    // $0.0195 an image through the Batch API: two fit in $0.04, a third would pass it.
    let summary = batch_run_within(
        dir.path(),
        "a red kite\na blue boat\na green hill\n",
        fake.clone(),
        Some(0.04),
    )
    .await;
    assert_eq!(fake.submitted().len(), 2, "{:?}", fake.submitted());
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].kind, "not_run");
    assert!(summary.cost_usd <= 0.04 + 1e-9, "{}", summary.cost_usd);
    assert_eq!(pngs(dir.path()).len(), 2);
}
