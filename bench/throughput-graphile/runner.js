#!/usr/bin/env node
// graphile-worker side of bench/throughput.
//
//   node runner.js
//
// Environment:
//   DATABASE_URL   postgres://user@127.0.0.1:PORT/DB (required; loopback only)
//   N              number of no-op jobs (20000)
//   TIMEOUT_S      give up after this many seconds of processing (300)
//   WAIT_GO=1      after the enqueue, print "enqueued" and wait for a line on
//                  stdin before starting the runner, and print "finished"
//                  as soon as the last job is done, before the runner stops
//                  (lets the caller take its CPU readings at both ends)
//
// Migrates graphile-worker's schema, enqueues N no-op jobs with addJobs in
// batches (not measured), then starts a runner with a taskList holding the
// no-op task, a quiet logger, graphile-worker's default concurrency and
// noHandleSignals.  The clock starts just before run() is called and stops
// at the Nth 'job:success' event.  Prints one JSON line on stdout:
//   {"version", "n", "done", "failed", "seconds", "jobs_per_s",
//    "first_job_ms", "left_in_queue", "concurrency" (workers created: the
//    default concurrency), "cpu_ms" (this process, user+system, over the
//    measured interval), "timed_out"}
// Exit 0 when it measured something (even on a timeout), 1 on an error.
"use strict";

const { EventEmitter } = require("node:events");
const { performance } = require("node:perf_hooks");
const { run, makeWorkerUtils, Logger } = require("graphile-worker");
const { version } = require("graphile-worker/package.json");

const connectionString = process.env.DATABASE_URL;
const n = Number(process.env.N || 20000);
const timeoutS = Number(process.env.TIMEOUT_S || 300);
const BATCH = 1000;

function fail(msg) {
	process.stderr.write(`throughput-graphile: ${msg}\n`);
	process.exit(1);
}

if (!connectionString) fail("DATABASE_URL is not set");
if (!/^postgres(ql)?:\/\/[^@/]*@(127\.0\.0\.1|localhost)(:\d+)?\//.test(connectionString))
	fail("DATABASE_URL must point at 127.0.0.1 or localhost");
if (!Number.isInteger(n) || n < 1) fail(`N must be a positive integer (got ${process.env.N})`);
if (!Number.isFinite(timeoutS) || timeoutS <= 0) fail("TIMEOUT_S must be a positive number");

// Quiet: graphile-worker logs nothing at all.
const logger = new Logger(() => () => {});

function waitForLine() {
	return new Promise((resolve, reject) => {
		let buf = "";
		const onData = (d) => {
			buf += d;
			if (buf.includes("\n")) {
				process.stdin.off("data", onData);
				process.stdin.pause();
				resolve();
			}
		};
		process.stdin.setEncoding("utf8");
		process.stdin.on("data", onData);
		process.stdin.once("end", () => reject(new Error("stdin closed before the go line")));
	});
}

async function main() {
	const utils = await makeWorkerUtils({ connectionString, logger });
	let left;
	try {
		await utils.migrate();
		// Enqueue (not measured): addJobs in batches of BATCH.
		for (let i = 0; i < n; i += BATCH) {
			const specs = [];
			for (let j = i; j < Math.min(n, i + BATCH); j++)
				specs.push({ identifier: "noop", payload: { i: j } });
			await utils.addJobs(specs);
		}
		const queued = await utils.withPgClient((c) =>
			c.query("SELECT count(*)::int AS c FROM graphile_worker.jobs"),
		);
		if (queued.rows[0].c !== n) fail(`queued ${queued.rows[0].c} jobs, expected ${n}`);

		let done = 0;
		let failed = 0;
		let firstJobMs = null;
		let endMs = null;
		let workers = 0;
		let cpu = null;
		let finish;
		const finished = new Promise((resolve) => (finish = resolve));
		// Our own emitter, so that no event of the start is missed.
		const events = new EventEmitter();
		events.on("worker:create", () => workers++);
		events.on("job:start", () => {
			if (firstJobMs === null) firstJobMs = performance.now() - t0;
		});
		events.on("job:success", () => {
			if (++done === n) {
				endMs = performance.now() - t0;
				cpu = process.cpuUsage(cpu0);
				finish();
			}
		});
		events.on("job:failed", () => failed++);
		if (process.env.WAIT_GO === "1") {
			process.stdout.write("enqueued\n");
			await waitForLine();
		}
		const cpu0 = process.cpuUsage();
		const t0 = performance.now();
		const runner = await run({
			connectionString,
			logger,
			events,
			noHandleSignals: true,
			taskList: { noop: async () => {} },
		});
		const timer = setTimeout(finish, timeoutS * 1000);
		await finished;
		clearTimeout(timer);
		const timedOut = endMs === null;
		if (timedOut) {
			endMs = performance.now() - t0;
			cpu = process.cpuUsage(cpu0);
		}
		if (process.env.WAIT_GO === "1") process.stdout.write("finished\n");
		await runner.stop();
		const res = await utils.withPgClient((c) =>
			c.query("SELECT count(*)::int AS c FROM graphile_worker.jobs"),
		);
		left = res.rows[0].c;
		const seconds = endMs / 1000;
		process.stdout.write(
			JSON.stringify({
				version,
				n,
				done,
				failed,
				seconds: Number(seconds.toFixed(3)),
				jobs_per_s: Number((done / seconds).toFixed(1)),
				first_job_ms: firstJobMs === null ? null : Number(firstJobMs.toFixed(1)),
				left_in_queue: left,
				concurrency: workers,
				cpu_ms: Number(((cpu.user + cpu.system) / 1000).toFixed(1)),
				timed_out: timedOut,
			}) + "\n",
		);
	} finally {
		await utils.release();
	}
}

main().then(
	() => process.exit(0),
	(e) => fail(e && e.stack ? e.stack : String(e)),
);
