"""Browser tests of the web page (headless Chromium via Playwright)."""
