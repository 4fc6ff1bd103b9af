import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// A real browser for the tests: headless Chromium, driven by Selenium (Python) through
/// chromedriver, both installed by `scripts/test.sh`.
enum Browser {
    /// Opens `url` and waits (up to `timeout`) until the page sets `window.__done`; returns the
    /// lines the page logged (`console.log`) and its uncaught errors, which the page keeps in
    /// `window.__log` (see ``pageScaffold``).
    static func run(_ url: String, timeout: Int = 30) async throws -> ScriptRunner.Result {
        try await ScriptRunner.run(["python3", "-c", driver, url, String(timeout)], timeout: .seconds(timeout + 30))
    }

    /// The driver: one page, its log printed line by line; exit 2 when the page never finished.
    static let driver = """
        import sys
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
        options = Options()
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                         "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                         "--renderer-process-limit=1"):
            options.add_argument(argument)
        options.binary_location = "/usr/bin/chromium"
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(sys.argv[1])
            try:
                WebDriverWait(driver, int(sys.argv[2])).until(lambda d: d.execute_script("return window.__done === true"))
                finished = True
            except Exception:
                finished = False
            for line in driver.execute_script("return window.__log || []"):
                print(line)
            sys.exit(0 if finished else 2)
        finally:
            driver.quit()
        """

    /// Runs first on a page: `console.log` lines and uncaught errors go to `window.__log`, and
    /// an uncaught error ends the page (`window.__done`).
    static let pageScaffold = """
        <script>
        window.__log = [];
        const __consoleLog = console.log.bind(console);
        console.log = (...parts) => { window.__log.push(parts.map(String).join(' ')); __consoleLog(...parts); };
        window.addEventListener('error', (event) => { window.__log.push('ERROR ' + event.message); window.__done = true; });
        window.addEventListener('unhandledrejection', (event) => {
          window.__log.push('ERROR ' + (event.reason && event.reason.message || event.reason)); window.__done = true;
        });
        </script>
        """

    /// A page's HTML, set once the servers it talks to are up.
    final class Page: Sendable {
        let html = Mutex("")
    }

    /// Serves one HTML page (whatever `page` holds when it is asked for) at `/` of a live
    /// server on a port of its own, for the length of `body`, which gets that port.
    static func withPageServer(_ page: Page, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        let router = Router()
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: page.html.withLock { $0 })))
        }
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await application.test(.live) { client in
            try await body(try #require(client.port))
        }
    }
}
