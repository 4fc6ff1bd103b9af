import Foundation
import HTTPTypes
import OrchModels
import OrchTestSupport
import Testing

@testable import OrchServer

/// The dashboard at `/ui`: its files over HTTP, then the pages in headless Chromium (Selenium)
/// against a live server, signed in through the form as admin, operator and viewer.
@Suite(.serialized) struct DashboardTests {
    @Test func pagesAndAssetsAreServedWithTheirPolicy() async throws {
        try await TestServer.withApp { api in
            for path in ["/ui", "/ui/", "/ui/tasks/task-123", "/ui/cores/a.b"] {
                let page = try await api.request(.get, path)
                #expect(page.status == .ok, "\(path)")
                #expect(page.headers[.contentType] == "text/html; charset=utf-8")
                let policy = try #require(page.headers[.contentSecurityPolicy])
                #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"))
                #expect(String(buffer: page.body).contains("/ui/assets/app.js"))
            }
            let script = try await api.request(.get, "/ui/assets/app.js")
            #expect(script.status == .ok)
            #expect(script.headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(String(buffer: script.body).contains("function h(tag"))
            let etag = try #require(script.headers[.eTag])
            let again = try await api.request(.get, "/ui/assets/app.js", headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified && again.body.readableBytes == 0)
            let missing = try await api.request(.get, "/ui/assets/nothing.js")
            #expect(missing.status == .notFound)
            #expect(try missing.error.code == "RESOURCE_NOT_FOUND")
        }
    }

    /// Every scenario of ``scenarioScript`` on a live server of each backend; the screenshots
    /// go to `ORCH_TEST_ARTEFACTS` (default `.build/artefacts/dashboard`). The script checks
    /// what the clicks did through the API itself: the test's own connection would have been
    /// closed as idle by the time the browser is done.
    @Test(arguments: TestBackend.all)
    func theDashboardInABrowser(backend: TestBackend) async throws {
        try await EventStreamTests.withLiveServer(backend: backend) { api, port, _ in
            let admin = try await api.adminToken()
            _ = try await api.createUser("ui_operator", role: .operator, adminToken: admin)
            _ = try await api.createUser("ui_viewer", role: .viewer, adminToken: admin)
            let hostile = try await api.request(
                .post, "/dispatch", token: admin,
                json: #"{"core_id":"ui-hostile","metadata":{"note":"<script>window.__pwned=1</script>","attr":"\"><img src=x onerror=\"window.__pwned=2\">"}}"#
            ).decode(DispatchResponse.self).taskID
            let artefacts = ProcessInfo.processInfo.environment["ORCH_TEST_ARTEFACTS"]
                ?? FileManager.default.currentDirectoryPath + "/.build/artefacts/dashboard/\(backend)"
            try FileManager.default.createDirectory(atPath: artefacts, withIntermediateDirectories: true)
            let run = try await ScriptRunner.run(
                [
                    "python3", "-c", Self.scenarioScript, "http://127.0.0.1:\(port)", TestServer.adminPassword, hostile,
                    artefacts,
                ],
                timeout: .seconds(240))
            #expect(run.status == 0, "browser:\n\(run.output)\n\(run.errors)")
            for step in Self.steps where run.status == 0 {
                #expect(run.output.contains("OK \(step)"), "missing step \(step):\n\(run.output)\n\(run.errors)")
            }
        }
    }

    static let steps = [
        "signed in as admin", "overview charts", "live task appeared", "task page by link", "timeline", "escaped", "cancelled from the ui",
        "dispatch form refuses bad json", "schedule created", "lock released", "token created", "users listed",
        "charts count finished tasks",
        "phone width", "signed in as operator", "core paused", "bulk cancel", "signed in as viewer",
        "viewer sees no actions", "sign out", "bad token returns to sign-in", "no console errors",
    ]

    /// The browser's side. Arguments: base URL, admin password, the hostile task's id, the
    /// folder for screenshots. Prints `OK <step>` as each step passes; any failure raises.
    static let scenarioScript = #"""
        import json, sys, time, urllib.request
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        base, admin_password, hostile, artefacts = sys.argv[1:5]
        options = Options()
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                         "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                         "--renderer-process-limit=1", "--window-size=1280,900"):
            options.add_argument(argument)
        options.binary_location = "/usr/bin/chromium"
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        wait = WebDriverWait(driver, 20)
        console = []

        def ok(step):
            print("OK " + step, flush=True)

        def keep_console():
            console.extend(entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE")

        def shot(name):
            driver.save_screenshot(f"{artefacts}/{name}.png")

        def api(method, path, token, body=None):
            request = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                             headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
            with urllib.request.urlopen(request) as response:
                text = response.read()
                return json.loads(text) if text else None

        def sign_in(username, password):
            driver.get(base + "/ui/")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form#sign-in input[name=username]"))
            driver.find_element(By.NAME, "username").send_keys(username)
            driver.find_element(By.NAME, "password").send_keys(password)
            driver.find_element(By.CSS_SELECTOR, "form#sign-in button[type=submit]").click()
            wait.until(lambda d: d.find_elements(By.ID, "sign-out"))
            keep_console()
            ok("signed in as " + username.replace("ui_", ""))

        def click(selector):
            # The pages redraw as events arrive: find the control again when it was replaced.
            def press(d):
                try:
                    d.find_element(By.CSS_SELECTOR, selector).click()
                    return True
                except Exception:
                    return False
            wait.until(press)

        def token():
            return driver.execute_script("return sessionStorage.getItem('orch.token')")

        def go(path):
            driver.execute_script("history.pushState(null, '', arguments[0]); dispatchEvent(new PopStateEvent('popstate'))", path)

        def sign_out():
            driver.find_element(By.ID, "sign-out").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form#sign-in"))
            assert token() is None, "the token outlived sign-out"

        try:
            sign_in("admin", admin_password)
            wait.until(lambda d: "Overview" in d.find_element(By.TAG_NAME, "h1").text)
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#charts svg.chart")) == 3)
            ok("overview charts")
            shot("overview")

            # The task list, then a task dispatched through the API shows up without a reload.
            driver.find_element(By.LINK_TEXT, "Tasks").click()
            wait.until(lambda d: d.find_elements(By.ID, "task-results"))
            driver.execute_script("window.__sameDocument = true")
            live = api("POST", "/dispatch", token(), {"core_id": "ui-live", "metadata": {"n": 1}})["task_id"]
            wait.until(lambda d: d.find_elements(By.LINK_TEXT, live))
            assert driver.execute_script("return window.__sameDocument === true"), "the page was reloaded"
            ok("live task appeared")
            shot("tasks")

            # Its page through its link, with its timeline.
            driver.find_element(By.LINK_TEXT, live).click()
            wait.until(lambda d: d.current_url.endswith("/ui/tasks/" + live))
            ok("task page by link")
            wait.until(lambda d: "task.created" in d.find_element(By.ID, "timeline").text)
            api("PUT", f"/jobs/{live}/status", token(), {"status": "running", "progress": 40})
            wait.until(lambda d: "task.progress" in d.find_element(By.ID, "timeline").text
                       or "task.started" in d.find_element(By.ID, "timeline").text)
            ok("timeline")
            shot("task")

            # Markup in metadata stays text.
            driver.get(base + "/ui/tasks/" + hostile)
            wait.until(lambda d: "<script>window.__pwned=1</script>" in d.find_element(By.ID, "task-fields").text)
            assert driver.execute_script("return window.__pwned === undefined"), "metadata ran as script"
            assert not driver.find_elements(By.CSS_SELECTOR, "#task-fields img, #task-fields script"), "metadata became markup"
            ok("escaped")

            # Cancel a queued task from the UI.
            queued = api("POST", "/dispatch", token(), {"core_id": "ui-cancel"})["task_id"]
            driver.get(base + "/ui/tasks/" + queued)
            click("#cancel-task")
            wait.until(lambda d: "cancelled" in d.find_element(By.ID, "task-fields").text)
            assert api("GET", "/tasks/" + queued, token())["status"] == "cancelled"
            ok("cancelled from the ui")

            # The dispatch form checks its JSON before sending.
            driver.find_element(By.LINK_TEXT, "Dispatch").click()
            wait.until(lambda d: d.find_elements(By.ID, "dispatch"))
            driver.find_element(By.NAME, "core_id").send_keys("ui-form")
            area = driver.find_element(By.NAME, "metadata")
            area.clear()
            area.send_keys("{not json")
            driver.find_element(By.CSS_SELECTOR, "form#dispatch button[type=submit]").click()
            wait.until(lambda d: "not JSON" in d.find_element(By.ID, "dispatch-error").text)
            assert api("GET", "/tasks?core_id=ui-form", token())["total_tasks"] == 0
            area.clear()
            area.send_keys('{"from": "form"}')
            driver.find_element(By.CSS_SELECTOR, "form#dispatch button[type=submit]").click()
            wait.until(lambda d: "/ui/tasks/task-" in d.current_url)
            ok("dispatch form refuses bad json")
            shot("dispatch-result")

            # A schedule from the form.
            go("/ui/schedules")
            wait.until(lambda d: d.find_elements(By.ID, "schedule"))
            form = driver.find_element(By.ID, "schedule")
            form.find_element(By.NAME, "name").send_keys("ui-hourly")
            form.find_element(By.NAME, "core_id").send_keys("ui-sched")
            form.find_element(By.NAME, "every").send_keys("1h")
            form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            wait.until(lambda d: "ui-hourly" in d.find_element(By.ID, "schedule-list").text)
            assert [s["name"] for s in api("GET", "/schedules", token())["schedules"]] == ["ui-hourly"]
            ok("schedule created")
            shot("schedules")

            # A held lock with its fencing token, released by force.
            grant = api("POST", "/locks", token(), {"resource": "ui-lock", "owner": "someone", "ttl": 120})
            go("/ui/locks")
            wait.until(lambda d: "ui-lock" in d.find_element(By.ID, "lock-list").text)
            assert str(grant["fencing_token"]) in driver.find_element(By.ID, "lock-list").text
            shot("locks")
            click("button[data-resource='ui-lock']")
            wait.until(lambda d: "No lock is held" in d.find_element(By.ID, "lock-list").text)
            assert api("GET", "/locks", token())["total_locks"] == 0
            ok("lock released")

            # An API token, shown once, that works.
            go("/ui/tokens")
            wait.until(lambda d: d.find_elements(By.ID, "create-token"))
            driver.find_element(By.CSS_SELECTOR, "#create-token input[name=name]").send_keys("ui-token")
            driver.find_element(By.CSS_SELECTOR, "#create-token button[type=submit]").click()
            secret = wait.until(lambda d: d.find_elements(By.ID, "token-secret")).pop().text
            assert api("GET", "/auth/me", secret)["username"] == "admin"
            wait.until(lambda d: "ui-token" in d.find_element(By.ID, "token-list").text)
            ok("token created")

            go("/ui/users")
            wait.until(lambda d: "ui_viewer" in d.find_element(By.ID, "user-list").text)
            shot("users")
            ok("users listed")

            # Finished tasks show in the overview's charts.
            for outcome in ("completed", "completed", "completed", "failed"):
                done = api("POST", "/dispatch", token(), {"core_id": "ui-done"})["task_id"]
                api("PUT", f"/jobs/{done}/status", token(), {"status": "running"})
                api("PUT", f"/jobs/{done}/status", token(), {"status": outcome})
            go("/ui/")
            wait.until(lambda d: "3 completed" in d.find_element(By.ID, "charts").text
                       and "1 failed" in d.find_element(By.ID, "charts").text)
            assert driver.find_elements(By.CSS_SELECTOR, "#charts svg.good rect")
            ok("charts count finished tasks")
            shot("overview-after")

            # A phone's width: nothing scrolls sideways.
            driver.set_window_size(375, 812)
            for path in ("/ui/", "/ui/tasks", "/ui/tasks/" + hostile, "/ui/cores", "/ui/schedules", "/ui/users"):
                driver.get(base + path)
                wait.until(lambda d: d.find_elements(By.ID, "sign-out") and not d.find_elements(By.CSS_SELECTOR, "main > p.muted"))
                time.sleep(0.3)
                width = driver.execute_script("return document.documentElement.scrollWidth")
                assert width <= 375, f"{path} is {width} px wide"
            shot("phone-cores")
            driver.get(base + "/ui/tasks")
            wait.until(lambda d: d.find_elements(By.ID, "task-results"))
            time.sleep(0.3)
            shot("phone-tasks")
            driver.set_window_size(1280, 900)
            ok("phone width")
            keep_console()
            sign_out()

            # An operator pauses a core.
            sign_in("ui_operator", "password-ui_operator")
            api("POST", "/dispatch", token(), {"core_id": "ui-pause"})
            go("/ui/cores/ui-pause")
            click("#pause-core")
            wait.until(lambda d: "paused: claims get nothing" in d.find_element(By.TAG_NAME, "main").text)
            assert api("GET", "/cores/ui-pause", token())["paused"] is True
            ok("core paused")
            shot("core")

            # Bulk cancel of what the filter matches, after its dry-run count.
            for _ in range(3):
                api("POST", "/dispatch", token(), {"core_id": "ui-bulk"})
            go("/ui/tasks?core_id=ui-bulk")
            click("#bulk-cancel")
            wait.until(lambda d: "3 tasks match; 3 would be cancelled" in d.find_element(By.ID, "bulk").text)
            assert api("GET", "/tasks?core_id=ui-bulk&status=queued", token())["total_tasks"] == 3
            shot("bulk")
            click("#bulk-confirm")
            wait.until(lambda d: api("GET", "/tasks?core_id=ui-bulk&status=cancelled", token())["total_tasks"] == 3)
            ok("bulk cancel")
            sign_out()

            # A viewer sees the pages but no action that would be refused.
            sign_in("ui_viewer", "password-ui_viewer")
            for section in ("Dispatch", "Locks", "Users"):
                assert not driver.find_elements(By.LINK_TEXT, section), "a viewer was offered " + section
            go("/ui/tasks/" + live)
            wait.until(lambda d: "task.created" in d.find_element(By.ID, "timeline").text)
            assert not driver.find_elements(By.CSS_SELECTOR, "#task-actions button"), "a viewer was offered task actions"
            go("/ui/cores/ui-pause")
            wait.until(lambda d: "paused" in d.find_element(By.TAG_NAME, "main").text)
            assert not driver.find_elements(By.ID, "pause-core"), "a viewer was offered pause"
            ok("viewer sees no actions")
            sign_out()
            ok("sign out")

            # A token the server no longer takes (expired, revoked) returns to the form.
            sign_in("ui_viewer", "password-ui_viewer")
            driver.execute_script("sessionStorage.setItem('orch.token', 'not-a-token')")
            driver.get(base + "/ui/tasks")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form#sign-in"))
            ok("bad token returns to sign-in")
            shot("sign-in")

            keep_console()
            # The refused token's 401 is the one error a browser logs by itself.
            unexpected = [entry for entry in console if "401" not in entry["message"]]
            assert not unexpected, "console errors: " + json.dumps(unexpected)
            ok("no console errors")
        except Exception as error:
            shot("failure")
            print("FAIL " + repr(error), flush=True)
            print("URL " + driver.current_url)
            print(driver.find_element(By.TAG_NAME, "body").text[:3000])
            sys.exit(1)
        finally:
            driver.quit()
        """#
}
