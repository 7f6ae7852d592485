// Drives octoha nodes with Octopus's official TypeScript client
// (@octopusdeploy/api-client, pinned in package-lock.json), nothing stubbed:
// every call below goes over HTTP to the nodes named in the plan.
//
//   node drive.js '<plan as JSON>'
//
// plan: {urls: [node URL, ...], apiKey, space, doneTaskId, longTaskId,
//        packagePath}.  With two URLs, calls alternate between the nodes.
// Prints one JSON object on its last line: what each call returned (or the
// error it threw), for the Python test to check.  Exits 0 when every call
// succeeded, 1 otherwise.
"use strict";

const {
  Client,
  OverwriteMode,
  PackageRepository,
  ServerTaskRepository,
  ServerTaskWaiter,
  SpaceServerTaskRepository,
} = require("@octopusdeploy/api-client");

async function main() {
  const plan = JSON.parse(process.argv[2]);
  const results = {};
  let failed = false;
  const step = async (name, fn) => {
    try {
      results[name] = { ok: true, value: await fn() };
    } catch (e) {
      failed = true;
      results[name] = { ok: false, error: String((e && (e.message || e.ErrorMessage)) || e), status: e && e.StatusCode };
    }
  };
  const clients = [];
  for (const url of plan.urls) {
    await step(`create:${clients.length}`, async () => {
      const c = await Client.create({ instanceURL: url, apiKey: plan.apiKey, userAgentApp: "octoha-tests" });
      clients.push(c);
      const info = await c.getServerInformation();
      return { version: info.version, installationId: info.installationId };
    });
  }
  if (clients.length !== plan.urls.length) {
    console.log(JSON.stringify(results));
    process.exit(1);
  }
  const a = clients[0];
  const b = clients[clients.length - 1];
  const tasksA = new SpaceServerTaskRepository(a, plan.space);
  const tasksB = new SpaceServerTaskRepository(b, plan.space);

  await step("getById", async () => {
    const t = await tasksB.getById(plan.doneTaskId);
    return { Id: t.Id, State: t.State, IsCompleted: t.IsCompleted, SpaceId: t.SpaceId };
  });
  await step("getDetails", async () => {
    const d = await tasksA.getDetails(plan.doneTaskId);
    return {
      TaskId: d.Task.Id,
      Activities: d.ActivityLogs.map((x) => ({ Name: x.Name, Status: x.Status, Lines: x.LogElements.length })),
      PhysicalLogSize: d.PhysicalLogSize,
      Progress: d.Progress.ProgressPercentage,
    };
  });
  await step("getRaw", async () => {
    const raw = await tasksB.getRaw(plan.doneTaskId);
    return { length: raw.length, firstLine: String(raw).split("\n")[0] };
  });
  await step("list", async () => {
    const ts = await tasksA.getByIds([plan.doneTaskId, plan.longTaskId]);
    return ts.map((t) => t.Id).sort();
  });
  await step("cancel", async () => {
    await new ServerTaskRepository(b).cancel(plan.longTaskId);
    return true;
  });
  await step("waiter", async () => {
    const waiter = new ServerTaskWaiter(a, plan.space);
    const seen = [];
    const t = await waiter.waitForServerTaskToComplete(plan.longTaskId, 200, 60000, (x) => seen.push(x.State));
    return { Id: t.Id, State: t.State, IsCompleted: t.IsCompleted, polled: seen.length };
  });
  await step("push", async () => {
    await new PackageRepository(a, plan.space).push([plan.packagePath], OverwriteMode.FailIfExists);
    return true;
  });
  await step("pushAgainFails", async () => {
    try {
      await new PackageRepository(b, plan.space).push([plan.packagePath], OverwriteMode.FailIfExists);
    } catch (e) {
      return { refused: true, message: String(e.message || e) };
    }
    throw new Error("a second FailIfExists push of the same version was accepted");
  });
  await step("pushIgnore", async () => {
    await new PackageRepository(b, plan.space).push([plan.packagePath], OverwriteMode.IgnoreIfExists);
    return true;
  });
  await step("listPackages", async () => {
    const page = await new PackageRepository(b, plan.space).list({ filter: plan.packageFilter, take: 10 });
    return {
      TotalResults: page.TotalResults,
      Items: page.Items.map((p) => ({ Id: p.Id, PackageId: p.PackageId, Version: p.Version, Hash: p.Hash })),
    };
  });
  await step("getPackage", async () => {
    const p = await new PackageRepository(a, plan.space).get(plan.packageRecordId);
    return { Id: p.Id, PackageSizeBytes: p.PackageSizeBytes };
  });
  console.log(JSON.stringify(results));
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(JSON.stringify({ fatal: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
});
