using Microsoft.Playwright;

namespace DurableStreams.Browser.Tests;

/// <summary>
/// A small in-page accessibility check (no axe-core: nothing is fetched from the internet): every visible control has an
/// accessible name, roles are known and fit their content, there is one visible main landmark, no positive tabindex,
/// scrollable regions are reachable by keyboard, and text meets WCAG AA contrast (4.5:1, 3:1 for large text) against
/// the background it is drawn on.
/// </summary>
internal static class AccessibilityCheck
{
    private const string Script = """
        () => {
          const problems = [];
          const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
          const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '');
          const text = (el) => (el.textContent || '').replace(/\s+/g, ' ').trim();
          const nameOf = (el) => {
            const by = el.getAttribute('aria-labelledby');
            if (by) return by.split(/\s+/).map((id) => text(document.getElementById(id) || document.createElement('i'))).join(' ').trim();
            if (el.getAttribute('aria-label')) return el.getAttribute('aria-label').trim();
            if (el.labels && el.labels.length) return [...el.labels].map(text).join(' ').trim();
            if (['BUTTON', 'SUMMARY', 'A', 'OPTION'].includes(el.tagName)) return text(el) || el.title || '';
            return el.title || '';
          };

          // Controls and everything else focusable need a name (a placeholder is not one).
          for (const el of document.querySelectorAll('input, select, textarea, button, summary, a[href], [tabindex], dialog, [role=toolbar], [role=group], [role=list], ul[aria-label], nav, main')) {
            if (el.tagName !== 'DIALOG' && !visible(el)) continue;
            if (!nameOf(el)) problems.push(`no accessible name: ${describe(el)}`);
          }

          // Roles: known ones only; a toolbar is for buttons (arrow keys move between them), not text fields.
          const known = new Set(['alert', 'status', 'log', 'toolbar', 'group', 'region', 'navigation', 'main', 'search', 'list', 'listitem', 'button', 'dialog', 'note', 'none', 'presentation']);
          for (const el of document.querySelectorAll('[role]')) {
            for (const role of el.getAttribute('role').split(/\s+/)) if (!known.has(role)) problems.push(`unknown role '${role}': ${describe(el)}`);
          }
          for (const el of document.querySelectorAll('[role=toolbar]')) {
            if (el.querySelector('input:not([type=checkbox]):not([type=radio]), textarea, select')) problems.push(`a toolbar holds a text field (arrow keys cannot both move the caret and the toolbar focus): ${describe(el)}`);
          }
          const mains = [...document.querySelectorAll('main, [role=main]')].filter(visible);
          if (mains.length !== 1) problems.push(`${mains.length} visible main landmarks (want 1)`);
          if (document.querySelectorAll('h1').length !== 1) problems.push('want exactly one h1');
          if (!document.documentElement.lang) problems.push('html has no lang');

          // Keyboard: no positive tabindex; a scrollable region is focusable or holds something tabbable.
          for (const el of document.querySelectorAll('[tabindex]')) if (el.tabIndex > 0) problems.push(`positive tabindex: ${describe(el)}`);
          for (const el of document.querySelectorAll('body *')) {
            if (!visible(el)) continue;
            const style = getComputedStyle(el);
            if (!/(auto|scroll)/.test(style.overflowY + style.overflowX) || (el.scrollHeight <= el.clientHeight && el.scrollWidth <= el.clientWidth)) continue;
            const tabbable = el.tabIndex >= 0 || [...el.querySelectorAll('button, input, select, textarea, summary, a[href], [tabindex]')].some((c) => c.tabIndex >= 0 && visible(c));
            if (!tabbable) problems.push(`scrollable region not reachable by keyboard: ${describe(el)}`);
          }

          // Contrast of every visible text against the background it is drawn on.
          const rgba = (value) => {
            const m = value.match(/rgba?\(([^)]+)\)/);
            if (!m) return null;
            const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
            return [r, g, b, a];
          };
          const background = (el) => {
            const layers = [];
            for (let e = el; e; e = e.parentElement) {
              const c = rgba(getComputedStyle(e).backgroundColor);
              if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
            }
            let [r, g, b] = matchMedia('(prefers-color-scheme: dark)').matches ? [0, 0, 0] : [255, 255, 255];
            for (const [lr, lg, lb, la] of layers.reverse()) { r = lr * la + r * (1 - la); g = lg * la + g * (1 - la); b = lb * la + b * (1 - la); }
            return [r, g, b];
          };
          const luminance = ([r, g, b]) => {
            const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
            return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
          };
          const seen = new Set();
          for (const el of document.querySelectorAll('body *')) {
            if (!visible(el) || el.closest('[disabled], :disabled')) continue;
            if (![...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim())) continue;
            const style = getComputedStyle(el);
            const fg = rgba(style.color);
            if (!fg) continue;
            const bg = background(el);
            const color = [fg[0] * fg[3] + bg[0] * (1 - fg[3]), fg[1] * fg[3] + bg[1] * (1 - fg[3]), fg[2] * fg[3] + bg[2] * (1 - fg[3])];
            const [hi, lo] = [luminance(color), luminance(bg)].sort((a, b) => b - a);
            const ratio = (hi + 0.05) / (lo + 0.05);
            const size = parseFloat(style.fontSize);
            const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
            const key = `${describe(el)} ${style.color} on ${bg.map(Math.round)}`;
            if (ratio < (large ? 3 : 4.5) && !seen.has(key)) {
              seen.add(key);
              problems.push(`contrast ${ratio.toFixed(2)}:1 < ${large ? 3 : 4.5}:1 for ${describe(el)} ('${text(el).slice(0, 30)}'): ${style.color} on rgb(${bg.map(Math.round).join(', ')})`);
            }
          }
          return problems;
        }
        """;

    /// <summary>The problems found on the page as it is now (empty when none).</summary>
    public static Task<string[]> RunAsync(IPage page) => page.EvaluateAsync<string[]>(Script);

    /// <summary>
    /// Presses Tab from the top of the page until focus leaves it or comes back around, and returns each stop as
    /// "index-in-document description visible" so a test can check the order and count.
    /// </summary>
    public static async Task<List<(int Index, string Element, bool Visible)>> TabStopsAsync(IPage page, int max = 200)
    {
        await page.EvaluateAsync("() => { document.activeElement?.blur(); window.getSelection()?.removeAllRanges(); }");
        var stops = new List<(int, string, bool)>();
        for (var i = 0; i < max; i++)
        {
            await page.Keyboard.PressAsync("Tab");
            var stop = (await page.EvaluateAsync<string>("""
                () => {
                  const el = document.activeElement;
                  if (!el || el === document.body) return '-1|body|false';
                  return [[...document.querySelectorAll('*')].indexOf(el), el.tagName.toLowerCase() + (el.id ? '#' + el.id : ''), el.getClientRects().length > 0].join('|');
                }
                """)).Split('|');
            var index = int.Parse(stop[0], System.Globalization.CultureInfo.InvariantCulture);
            if (index < 0 || stops.Exists(s => s.Item1 == index))
            {
                break;
            }
            stops.Add((index, stop[1], stop[2] == "true"));
        }
        return stops;
    }
}
