import type { Child } from "hono/jsx";

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#1d2433;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#cfd8ea;text-decoration:none}header a.on{color:#fff;font-weight:600}
header form{margin-left:auto}main{padding:1rem 1.2rem;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{border-bottom:1px solid #e3e6ec;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{font-weight:600;background:#eef1f6}.num{text-align:right;font-variant-numeric:tabular-nums}
.flash{padding:.5rem .8rem;border-radius:4px;margin:.5rem 0}.ok{background:#e3f5e8}.err{background:#fde8e8}
.card{background:#fff;border:1px solid #e3e6ec;border-radius:6px;padding:.8rem;margin:.6rem 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:.8rem}
button,select,input{font:inherit;padding:.2rem .4rem}form.inline{display:inline-flex;gap:.3rem;align-items:center;margin:0}
img.kyc{max-width:260px;max-height:180px;border:1px solid #ccc}.muted{color:#6b7486}
`;

const NAV: [string, string][] = [
  ["/admin", "Overview"],
  ["/admin/alerts", "Alerts"],
  ["/admin/kyc", "KYC"],
  ["/admin/payouts", "Held payouts"],
  ["/admin/withdrawals", "Withdrawals"],
  ["/admin/users", "Users"],
  ["/admin/batches", "Batches"],
];

export function Page(props: { title: string; path?: string; csrf?: string; flash?: { ok?: string; error?: string }; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · Money console</title>
        <style>{STYLE}</style>
      </head>
      <body>
        {props.csrf ? (
          <header>
            <strong>Money console</strong>
            {NAV.map(([href, label]) => (
              <a href={href} class={props.path === href ? "on" : ""}>
                {label}
              </a>
            ))}
            <form method="post" action="/admin/logout">
              <input type="hidden" name="_csrf" value={props.csrf} />
              <button type="submit">Sign out</button>
            </form>
          </header>
        ) : null}
        <main>
          <h1>{props.title}</h1>
          {props.flash?.ok ? <p class="flash ok" role="status">{props.flash.ok}</p> : null}
          {props.flash?.error ? <p class="flash err" role="alert">{props.flash.error}</p> : null}
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** A POST form with the session's CSRF token. */
export function Action(props: { action: string; csrf: string; children?: Child; label?: string }) {
  return (
    <form method="post" action={props.action} class="inline">
      <input type="hidden" name="_csrf" value={props.csrf} />
      {props.children}
    </form>
  );
}

/** A bar or line chart of one series, as inline SVG (no script). */
export function Chart(props: { title: string; points: { label: string; value: number | null }[]; kind: "bar" | "line"; format?: (v: number) => string }) {
  const w = 560;
  const h = 160;
  const pad = 28;
  const values = props.points.map((p) => p.value ?? 0);
  const max = Math.max(1e-9, ...values);
  const step = (w - pad * 2) / Math.max(1, props.points.length);
  const y = (v: number) => h - pad - (v / max) * (h - pad * 2);
  const fmt = props.format ?? ((v: number) => v.toLocaleString("en-US"));
  const line = props.points.map((p, i) => `${pad + step * i + step / 2},${y(p.value ?? 0)}`).join(" ");
  return (
    <div class="card">
      <strong>{props.title}</strong> <span class="muted">max {fmt(max === 1e-9 ? 0 : max)}</span>
      <svg viewBox={`0 0 ${w} ${h}`} width="100%" role="img" aria-label={props.title}>
        <line x1={pad} y1={h - pad} x2={w - pad} y2={h - pad} stroke="#999" />
        {props.kind === "bar"
          ? props.points.map((p, i) => (
              <rect x={pad + step * i + 1} y={y(p.value ?? 0)} width={Math.max(1, step - 2)} height={h - pad - y(p.value ?? 0)} fill="#4a6fd8">
                <title>{`${p.label}: ${fmt(p.value ?? 0)}`}</title>
              </rect>
            ))
          : <polyline points={line} fill="none" stroke="#d8664a" stroke-width="2" />}
        <text x={pad} y={h - 8} font-size="10" fill="#666">
          {props.points[0]?.label ?? ""}
        </text>
        <text x={w - pad} y={h - 8} font-size="10" fill="#666" text-anchor="end">
          {props.points.at(-1)?.label ?? ""}
        </text>
      </svg>
    </div>
  );
}
