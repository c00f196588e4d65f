// Drives the dead-letter page in Debian's chromium: finds three dead-lettered orders, replays
// one, edits and retries one (a body that does not validate first), deletes one, each through
// its confirmation. Run by tests/ui.rs with UI_URL (the page), REPLAY, EDIT and DELETE (order
// ids) and SHOTS (a directory for screenshots). Prints one JSON line per action; exits 1 on the
// first step that fails, printing the page it was on.
import { chromium } from "playwright-core";

const { UI_URL, REPLAY, EDIT, DELETE, SHOTS } = process.env;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
  headless: true,
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.setDefaultTimeout(20_000);

/** The front page's group of the payment DLQ, opened; the dead letter of `order` on it. */
async function letterOf(order) {
  await page.goto(UI_URL);
  const row = page.locator("tr", { hasText: "payment.order-created.dlq" }).first();
  await row.getByRole("link").first().click();
  const letter = page.locator("section.letter", { hasText: order });
  await letter.waitFor();
  return letter;
}

/** Confirms the question on the page; the notice the front page then shows. */
async function confirm(expected) {
  const question = await page.getByRole("heading", { level: 2 }).innerText();
  if (!question.startsWith(expected)) throw new Error(`asked: ${question}`);
  await page.getByRole("button", { name: "Confirm" }).click();
  return page.getByRole("status").innerText();
}

function expect(notice, start) {
  if (!notice.startsWith(start)) throw new Error(`notice: ${notice}`);
  console.log(JSON.stringify({ notice }));
}

try {
  await page.goto(UI_URL);
  await page.locator("tr", { hasText: "payment.order-created.dlq" }).first().waitFor();
  await page.screenshot({ path: `${SHOTS}/dead-letter-groups.png`, fullPage: true });

  let letter = await letterOf(REPLAY);
  await page.screenshot({ path: `${SHOTS}/dead-letter-group.png`, fullPage: true });
  await letter.getByRole("button", { name: "Replay", exact: true }).click();
  expect(await confirm("Replay dead letter"), "replayed dead letter");

  letter = await letterOf(EDIT);
  await letter.getByRole("button", { name: "Edit and retry" }).click();
  const body = page.locator("textarea[name=body]");
  const original = await body.inputValue();
  await body.fill("{ not json");
  await page.getByRole("button", { name: "Review" }).click();
  const refused = await page.getByRole("alert").innerText();
  if (!refused.includes("nothing published")) throw new Error(`refusal: ${refused}`);
  await page.locator("textarea[name=body]").fill(original.replace("tok_outage", "tok_visa"));
  await page.getByRole("button", { name: "Review" }).click();
  expect(await confirm("Replay dead letter"), "replayed dead letter");

  letter = await letterOf(DELETE);
  await letter.getByRole("button", { name: "Delete" }).click();
  expect(await confirm("Delete dead letter"), "deleted dead letter");
} catch (err) {
  const text = await page.locator("body").innerText().catch(() => "(no page)");
  console.error(`dead-letter page: ${err.message}\nat ${page.url()}:\n${text}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
