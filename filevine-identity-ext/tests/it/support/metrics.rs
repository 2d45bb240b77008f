//! A `metrics` recorder for tests: installed once as the global recorder
//! of the test binary, it keeps every counter and histogram by name and
//! labels. Tests read only series labelled with their own server's
//! authority, so concurrent tests do not see each other's counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

#[derive(Default)]
struct Series(AtomicU64);

impl CounterFn for Series {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

#[derive(Default)]
pub struct TestRecorder {
    counters: Mutex<HashMap<String, Arc<Series>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
}

/// `name{k=v,…}` with the labels sorted.
fn render(key: &Key) -> String {
    let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let series = self.counters.lock().unwrap().entry(render(key)).or_default().clone();
        Counter::from_arc(series)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let samples = self.histograms.lock().unwrap().entry(render(key)).or_default().clone();
        Histogram::from_arc(samples)
    }
}

impl TestRecorder {
    /// The recorder of this test binary, installed on first use.
    pub fn global() -> &'static TestRecorder {
        static GLOBAL: OnceLock<&'static TestRecorder> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let recorder: &'static TestRecorder = Box::leak(Box::default());
            metrics::set_global_recorder(recorder).expect("no other metrics recorder in the test binary");
            recorder
        })
    }

    /// A counter's value; `labels` as `k=v`, in any order.
    pub fn counter(&self, name: &str, labels: &[&str]) -> u64 {
        let mut labels: Vec<&str> = labels.to_vec();
        labels.sort();
        let key = format!("{name}{{{}}}", labels.join(","));
        self.counters.lock().unwrap().get(&key).map_or(0, |s| s.0.load(Ordering::SeqCst))
    }

    /// How many samples a histogram has.
    pub fn samples(&self, name: &str, labels: &[&str]) -> usize {
        let mut labels: Vec<&str> = labels.to_vec();
        labels.sort();
        let key = format!("{name}{{{}}}", labels.join(","));
        self.histograms.lock().unwrap().get(&key).map_or(0, |s| s.0.lock().unwrap().len())
    }
}
