// Mailpit's own npm client (mailpit-api, pinned in package.json) against mail-test-srv,
// unchanged. Run by ../mailpit_api.rs, which has stored two messages first:
//   1. "First" from "Jo Q" <jo@x.test> to bob@x.test: text + HTML + a.pdf attachment
//   2. "Second" from amy@x.test to carol@x.test: plain text
// Protocol on stdout/stdin with the Rust test: each check prints "ok <name>"; at "waiting" the
// test sends a third message; at "chaos on" it checks that MAIL now gets 451 and answers
// "next". "done" ends it. Any failed assertion exits non-zero with the reason on stderr.
import assert from "node:assert/strict";
import { createInterface } from "node:readline";
import { MailpitClient } from "mailpit-api";

const url = process.argv[2];
const mailpit = new MailpitClient(url);
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const ok = (name) => console.log(`ok ${name}`);
const nextLine = async () => (await input.next()).value;

const info = await mailpit.getInfo();
assert.equal(info.Messages, 2);
assert.equal(info.Unread, 2);
assert.equal(typeof info.RuntimeStats.Uptime, "number");
ok("info");

const list = await mailpit.listMessages();
assert.equal(list.total, 2);
assert.equal(list.messages_count, 2);
assert.deepEqual(list.messages.map((m) => m.Subject), ["Second", "First"], "newest first");
const [second, first] = list.messages;
assert.deepEqual(first.From, { Name: "Jo Q", Address: "jo@x.test" });
assert.deepEqual(first.To, [{ Name: "", Address: "bob@x.test" }]);
assert.equal(first.Attachments, 1);
assert.equal(second.Snippet, "Just text.");
const page = await mailpit.listMessages(1, 1);
assert.deepEqual(page.messages.map((m) => m.ID), [first.ID]);
ok("list");

const summary = await mailpit.getMessageSummary(first.ID);
assert.equal(summary.ID, first.ID);
assert.equal(summary.MessageID, "first@x.test");
assert.equal(summary.Subject, "First");
assert.match(summary.Text, /^The plain part\./);
assert.match(summary.HTML, /<p>The <b>HTML<\/b> part\.<\/p>/);
assert.equal(summary.Attachments.length, 1);
assert.equal(summary.Attachments[0].FileName, "a.pdf");
assert.equal(summary.Attachments[0].ContentType, "application/pdf");
const latest = await mailpit.getMessageSummary();
assert.equal(latest.ID, second.ID, "latest is the newest message");
assert.equal((await mailpit.listMessages()).unread, 0, "fetching a summary marks it read");
ok("summary");

const attachment = await mailpit.getMessageAttachment(first.ID, summary.Attachments[0].PartID);
assert.equal(attachment.type, "application/pdf");
assert.equal(Buffer.from(await attachment.arrayBuffer()).toString(), "%PDF-1.4 test");
ok("attachment");

const headers = await mailpit.getMessageHeaders(first.ID);
assert.deepEqual(headers.Subject, ["First"]);
assert.deepEqual(headers["Message-Id"], ["<first@x.test>"]);
assert.deepEqual(Object.keys(headers), Object.keys(headers).sort(), "keys sorted as Mailpit's");
ok("headers");

const raw = await mailpit.getMessageSource(first.ID);
assert.match(raw, /^From: "Jo Q" <jo@x\.test>\r\n/);
assert.match(raw, /\r\n--BOUNDARY--\r\n$/);
ok("raw");

assert.match(await mailpit.renderMessageHTML(first.ID), /<b>HTML<\/b>/);
assert.match(await mailpit.renderMessageText(second.ID), /^Just text\./);
ok("render");

const byTo = await mailpit.searchMessages({ query: "to:carol@x.test" });
assert.deepEqual(byTo.messages.map((m) => m.ID), [second.ID]);
assert.equal(byTo.messages_count, 1);
const byPhrase = await mailpit.searchMessages({ query: '"plain part" from:jo' });
assert.deepEqual(byPhrase.messages.map((m) => m.ID), [first.ID]);
const none = await mailpit.searchMessages({ query: "subject:First -from:jo" });
assert.equal(none.messages_count, 0);
ok("search");

await mailpit.setReadStatus({ IDs: [first.ID], Read: false });
const unread = await mailpit.searchMessages({ query: "is:unread" });
assert.deepEqual(unread.messages.map((m) => m.ID), [first.ID]);
ok("read status");

console.log("waiting");
const waited = await mailpit.waitForMessages(
  { query: "subject:Third", count: 1 },
  { timeout: 20000, interval: 50 },
);
assert.equal(waited.messages_count, 1);
const third = await mailpit.waitForMessage({ query: "subject:Third" }, { timeout: 5000 });
assert.equal(third.Text.trim(), "Arrived while the client waited.");
ok("wait");

const set = await mailpit.setChaosTriggers({ Sender: { ErrorCode: 451, Probability: 100 } });
assert.deepEqual(set.Sender, { ErrorCode: 451, Probability: 100 });
assert.deepEqual((await mailpit.getChaosTriggers()).Sender, { ErrorCode: 451, Probability: 100 });
console.log("chaos on");
assert.equal(await nextLine(), "next");
const reset = await mailpit.setChaosTriggers();
assert.equal(reset.Sender.Probability, 0);
ok("chaos");

await mailpit.deleteMessages({ IDs: [first.ID] });
assert.deepEqual((await mailpit.listMessages()).messages.map((m) => m.ID), [third.ID, second.ID]);
await mailpit.deleteMessagesBySearch({ query: "to:carol@x.test" });
assert.equal((await mailpit.listMessages()).total, 1);
await mailpit.deleteMessages();
assert.equal((await mailpit.listMessages()).total, 0);
assert.equal((await mailpit.getInfo()).Messages, 0);
ok("delete");

console.log("done");
process.exit(0);
