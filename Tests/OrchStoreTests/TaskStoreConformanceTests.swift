import Foundation
import OrchCore
import OrchModels
import Testing

@testable import OrchStore

@Suite struct TaskStoreConformanceTests {
    static let backends = StoreBackend.all
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static func dispatch(_ core: String = "core", priority: Int = 1, at offset: TimeInterval = 0) -> TaskTransition {
        TaskLifecycle.dispatch(
            DispatchRequest(coreID: core, priority: priority), id: Identifier.make("task"), createdBy: "user-1",
            now: start.addingTimeInterval(offset))
    }

    @discardableResult
    static func insert(_ store: any Store, _ transition: TaskTransition) async throws -> TaskRecord {
        guard case .created(let task, _, _) = try await store.insertTask(transition, idempotency: nil, activeSince: Self.start) else {
            Issue.record("not created")
            return transition.task
        }
        return task
    }

    @Test(arguments: backends)
    func insertedTaskAndItsEventReadBack(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let transition = Self.dispatch()
            guard case .created(let task, let events, _) = try await store.insertTask(transition, idempotency: nil, activeSince: Self.start) else {
                Issue.record("expected a new task")
                return
            }
            #expect(try await store.task(id: task.id) == task)
            #expect(events.map(\.type.rawValue) == ["task.created"])
            let (total, stored) = try await store.taskEvents(taskID: task.id, EventQuery())
            #expect(total == 1 && stored == events)
        }
    }

    /// Depth per core from the counts, and the oldest queued task's ready time over every
    /// priority; finished and scheduled tasks are not queued.
    @Test(arguments: backends)
    func queueSummaryCountsEachCoreAndFindsItsOldestTask(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            try await Self.insert(store, Self.dispatch("a", priority: 5, at: 30))
            try await Self.insert(store, Self.dispatch("a", priority: 1, at: 10))
            try await Self.insert(store, Self.dispatch("a", priority: 9, at: 20))
            try await Self.insert(store, Self.dispatch("b", priority: 2, at: 40))
            let done = try await Self.insert(store, Self.dispatch("b", priority: 2, at: 5))
            _ = try await store.modifyTask(id: done.id) { task in
                try TaskLifecycle.update(task, with: StatusUpdateRequest(status: .cancelled), now: Self.start.addingTimeInterval(50))
            }
            let summary = try await store.queueSummary()
            #expect(summary.map(\.coreID) == ["a", "b"])
            #expect(summary.map(\.depth) == [3, 1])
            #expect(summary[0].oldestReadyAt == Self.start.addingTimeInterval(10))
            #expect(summary[1].oldestReadyAt == Self.start.addingTimeInterval(40))
        }
    }

    @Test(arguments: backends)
    func idempotencyKeyRepeatsOrConflicts(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let key = IdempotencyKey(userID: "u", key: "k", fingerprint: "f1", validAfter: Self.start.addingTimeInterval(-10))
            let first = Self.dispatch()
            _ = try await store.insertTask(first, idempotency: key, activeSince: Self.start)
            #expect(try await store.insertTask(Self.dispatch(), idempotency: key, activeSince: Self.start) == .repeated(first.task, QueueStanding(position: 1, load: CoreLoad(averageDuration: nil, activeWorkers: 0))))
            var other = key
            other.fingerprint = "f2"
            await #expect(throws: OrchError.self) { _ = try await store.insertTask(Self.dispatch(), idempotency: other, activeSince: Self.start) }
            var otherUser = key
            otherUser.userID = "v"
            guard case .created = try await store.insertTask(Self.dispatch(), idempotency: otherUser, activeSince: Self.start) else {
                Issue.record("the key is per user")
                return
            }
            var expired = key
            expired.validAfter = Self.start.addingTimeInterval(10)
            guard case .created = try await store.insertTask(Self.dispatch(at: 20), idempotency: expired, activeSince: Self.start) else {
                Issue.record("an expired key is forgotten")
                return
            }
            #expect(try await store.listTasks(TaskQuery()).total == 3)
        }
    }

    /// Thirty dispatches racing with one key: one creates the task, every other answers it.
    @Test(arguments: backends)
    func racingDispatchesWithOneKeyAllAnswerTheSameTask(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let key = IdempotencyKey(userID: "u", key: "race", fingerprint: "f", validAfter: Self.start.addingTimeInterval(-10))
            let outcomes = try await withThrowingTaskGroup(of: (created: Bool, taskID: String).self) { group in
                for _ in 0..<30 {
                    group.addTask {
                        switch try await store.insertTask(Self.dispatch(), idempotency: key, activeSince: Self.start) {
                        case .created(let task, _, _): (true, task.id)
                        case .repeated(let task, _): (false, task.id)
                        }
                    }
                }
                return try await group.reduce(into: [(created: Bool, taskID: String)]()) { $0.append($1) }
            }
            #expect(outcomes.filter(\.created).count == 1)
            #expect(Set(outcomes.map(\.taskID)).count == 1)
            #expect(try await store.listTasks(TaskQuery()).total == 1)
        }
    }

    /// Eighty dispatches at once (which the PostgreSQL store writes in combined batches): each
    /// is answered with its own task and event, stored as answered; two that reuse one task id
    /// (a write that must fail) fail alone, one of them, and spoil no other dispatch.
    @Test(arguments: backends)
    func concurrentDispatchesAreAnsweredEachAndOneBadOneFailsAlone(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let twin = Identifier.make("task")
            let outcomes = try await withThrowingTaskGroup(of: (index: Int, outcome: DispatchOutcome?).self) { group in
                for index in 0..<80 {
                    group.addTask {
                        let id = index == 20 || index == 60 ? twin : Identifier.make("task")
                        let transition = TaskLifecycle.dispatch(
                            DispatchRequest(coreID: "core", priority: index % 2 == 0 ? 1 : 5, metadata: ["n": .int(Int64(index))]),
                            id: id, createdBy: "user-1", now: Self.start.addingTimeInterval(Double(index)))
                        do {
                            return (index, try await store.insertTask(transition, idempotency: nil, activeSince: Self.start))
                        } catch {
                            return (index, nil)
                        }
                    }
                }
                return try await group.reduce(into: [(index: Int, outcome: DispatchOutcome?)]()) { $0.append($1) }
            }
            let failed = outcomes.filter { $0.outcome == nil }.map(\.index)
            #expect(failed.count == 1 && [20, 60].contains(failed.first ?? -1))
            var seen = Set<String>()
            for (index, outcome) in outcomes {
                guard case .created(let task, let events, let standing) = outcome else { continue }
                seen.insert(task.id)
                #expect(task.metadata["n"] == .int(Int64(index)))
                #expect(events.map(\.type) == [.taskCreated] && events.allSatisfy { $0.taskID == task.id })
                #expect(try await store.task(id: task.id) == task)
                #expect((1...79).contains(standing.position))
            }
            #expect(seen.count == 79)
            #expect(try await store.listTasks(TaskQuery()).total == 79)
            let sequences = outcomes.compactMap { outcome -> Int64? in
                guard case .created(_, let events, _) = outcome.outcome else { return nil }
                return events.first?.sequence
            }
            #expect(Set(sequences).count == 79)
        }
    }

    /// Many changes at once, several of each task (combined on PostgreSQL, where a batch's
    /// change of a task that another batch changed meanwhile is applied again): none is lost,
    /// each answer has its own task's events, and a missing task or a refused change fails alone.
    @Test(arguments: backends)
    func concurrentChangesAreEachAppliedOnceAndOneBadOneFailsAlone(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            var tasks: [TaskRecord] = []
            for offset in 0..<10 { tasks.append(try await Self.insert(store, Self.dispatch(at: Double(offset)))) }
            let ids = tasks.map(\.id)
            struct Refused: Error {}
            let answers = try await withThrowingTaskGroup(of: (id: String, stored: StoredTransition?).self) { group in
                for round in 0..<20 {
                    for id in ids {
                        group.addTask {
                            let stored = try await store.modifyTask(id: id) { task in
                                var changed = task
                                changed.progress = (task.progress ?? 0) + 1
                                changed.updatedAt = Self.start.addingTimeInterval(100)
                                return TaskTransition(
                                    task: changed,
                                    events: [EventDraft(type: .taskProgress, timestamp: changed.updatedAt, data: ["round": .int(Int64(round))])])
                            }
                            return (id, stored)
                        }
                    }
                }
                group.addTask {
                    do {
                        _ = try await store.modifyTask(id: "task-missing") { TaskTransition(task: $0, events: []) }
                        return ("task-missing", nil)
                    } catch let error as OrchError where error.status == 404 {
                        return ("missing answered 404", nil)
                    }
                }
                group.addTask {
                    do {
                        _ = try await store.modifyTask(id: ids[7]) { _ in throw Refused() }
                        return ("refused", nil)
                    } catch is Refused {
                        return ("refused answered", nil)
                    }
                }
                return try await group.reduce(into: [(id: String, stored: StoredTransition?)]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.stored == nil }.map(\.id).sorted() == ["missing answered 404", "refused answered"])
            var sequences = Set<Int64>()
            for (id, stored) in answers {
                guard let stored else { continue }
                #expect(stored.task.id == id)
                #expect(stored.events.count == 1 && stored.events.allSatisfy { $0.taskID == id && $0.type == .taskProgress })
                sequences.formUnion(stored.events.map(\.sequence))
            }
            #expect(sequences.count == 200)
            for id in ids {
                #expect(try await store.task(id: id)?.progress == 20)
                let (total, events) = try await store.taskEvents(taskID: id, EventQuery(limit: 100))
                #expect(total == 21 && events.filter { $0.type == .taskProgress }.count == 20)
            }
        }
    }

    @Test(arguments: backends)
    func claimTakesHighestPriorityThenOldestAndQueuePositionAgrees(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let low1 = try await Self.insert(store, Self.dispatch(priority: 1, at: 0))
            let high = try await Self.insert(store, Self.dispatch(priority: 5, at: 1))
            let low2 = try await Self.insert(store, Self.dispatch(priority: 1, at: 2))
            _ = try await Self.insert(store, Self.dispatch("other", priority: 9, at: 3))
            #expect(try await store.queuePosition(of: high) == 1)
            #expect(try await store.queuePosition(of: low1) == 2)
            #expect(try await store.queuePosition(of: low2) == 3)
            let now = Self.start.addingTimeInterval(10)
            let claimed = try await store.claimTasks(coreID: "core", workerID: "w", limit: 2, now: now) { task in
                try TaskLifecycle.claim(task, workerID: "w", lease: 30, leaseToken: Identifier.make("lease"), now: now)
            }
            #expect(claimed.tasks.map(\.task.id) == [high.id, low1.id])
            #expect(claimed.tasks.allSatisfy { $0.task.status == .running && $0.events.map(\.type.rawValue) == ["task.started"] })
            #expect(try await store.queuePosition(of: low2) == 1)
            #expect(try await store.countTasks(status: .running) == 2)
            #expect(try await store.coreLoad(coreID: "core", since: Self.start).activeWorkers == 1)
        }
    }

    /// The mean duration behind `estimated_start`: over the core's 100 most recently created
    /// completed tasks (one without a duration counts for nothing), no other core's, no failed.
    @Test(arguments: backends)
    func averageDurationIsOverTheCoresLatestCompletedTasks(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            func finished(_ core: String, _ status: TaskStatus, duration: Double?, at offset: TimeInterval) -> TaskTransition {
                var transition = Self.dispatch(core, at: offset)
                transition.task.status = status
                transition.task.completedAt = transition.task.createdAt
                transition.task.duration = duration
                return transition
            }
            var transitions = (0..<50).map { finished("core", .completed, duration: 100, at: Double($0)) }
            transitions += (50..<149).map { finished("core", .completed, duration: Double($0 % 2 == 0 ? 2 : 4), at: Double($0)) }
            transitions.append(finished("core", .completed, duration: nil, at: 149))
            transitions.append(finished("core", .failed, duration: 1000, at: 150))
            transitions.append(finished("other", .completed, duration: 1000, at: 151))
            _ = try await store.insertTasks(transitions, activeSince: Self.start)
            // The latest hundred: the one without a duration, then 99 of 2 s and 4 s (50 of 2 s).
            let average = try #require(try await store.coreLoad(coreID: "core", since: Self.start).averageDuration)
            #expect(abs(average - (50 * 2 + 49 * 4) / 99.0) < 1e-9)
            #expect(try await store.coreLoad(coreID: "idle", since: Self.start).averageDuration == nil)
        }
    }

    /// What a starting node's task rollup reads: finished tasks of one status changed in a
    /// time range, latest first, up to a limit.
    @Test(arguments: backends)
    func finishedTasksAreReadByStatusAndTimeLatestFirst(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            var transitions: [TaskTransition] = []
            for (offset, status) in [TaskStatus.completed, .failed, .completed, .queued, .completed].enumerated() {
                var transition = Self.dispatch("core-\(offset)", at: Double(offset * 10))
                transition.task.status = status
                transition.task.duration = Double(offset)
                transitions.append(transition)
            }
            _ = try await store.insertTasks(transitions, activeSince: Self.start)
            let completed = try await store.finishedTasks(
                status: .completed, since: Self.start, until: Self.start.addingTimeInterval(40), limit: 10)
            #expect(completed.map(\.coreID) == ["core-2", "core-0"])
            #expect(completed.first == FinishedTask(coreID: "core-2", status: .completed, finishedAt: Self.start.addingTimeInterval(20), duration: 2))
            let latest = try await store.finishedTasks(
                status: .completed, since: Self.start.addingTimeInterval(1), until: Self.start.addingTimeInterval(100), limit: 1)
            #expect(latest.map(\.coreID) == ["core-4"])
            #expect(try await store.finishedTasks(status: .failed, since: Self.start, until: Self.start, limit: 10).isEmpty)
        }
    }

    @Test(arguments: backends)
    func concurrentClaimersNeverShareATask(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            for index in 0..<200 { try await Self.insert(store, Self.dispatch(at: Double(index))) }
            let now = Self.start.addingTimeInterval(1000)
            let ids = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<50 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let claimed = try await store.claimTasks(coreID: "core", workerID: "w\(worker)", limit: 3, now: now) { task in
                                try TaskLifecycle.claim(task, workerID: "w\(worker)", lease: 30, leaseToken: Identifier.make("lease"), now: now)
                            }
                            if claimed.tasks.isEmpty { return mine }
                            mine += claimed.tasks.map(\.task.id)
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(ids.count == 200)
            #expect(Set(ids).count == 200)
        }
    }

    @Test(arguments: backends)
    func expiryFindsLapsedLeasesAndTimeouts(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            try await Self.insert(store, Self.dispatch(at: 0))
            try await Self.insert(store, Self.dispatch(at: 1))
            let now = Self.start.addingTimeInterval(10)
            _ = try await store.claimTasks(coreID: "core", workerID: "w", limit: 2, now: now) { task in
                try TaskLifecycle.claim(task, workerID: "w", lease: 5, leaseToken: Identifier.make("lease"), now: now)
            }
            #expect(try await store.nextExpiry() == now.addingTimeInterval(5))
            let early = try await store.expireTasks(now: now.addingTimeInterval(4), limit: 10) { TaskLifecycle.expire($0, now: now.addingTimeInterval(4)) }
            #expect(early.isEmpty)
            let later = now.addingTimeInterval(5)
            let expired = try await store.expireTasks(now: later, limit: 10) { TaskLifecycle.expire($0, now: later) }
            #expect(expired.count == 2)
            #expect(expired.allSatisfy { $0.task.status == .scheduled && $0.events.map(\.type.rawValue) == ["task.requeued"] })
            #expect(try await store.nextExpiry() == nil)
        }
    }

    /// Scheduled tasks are not claimable; promotion takes those due, earliest first, and
    /// puts them in claim order at their `run_at`.
    @Test(arguments: backends)
    func scheduledTasksArePromotedWhenDueAndOnlyThenClaimable(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let now = Self.start
            for (name, delay) in [("late", 20), ("early", 10)] {
                let transition = TaskLifecycle.dispatch(
                    DispatchRequest(coreID: "core", delay: delay), id: "task-\(name)", createdBy: nil, now: now)
                _ = try await store.insertTask(transition, idempotency: nil, activeSince: now)
            }
            let plain = try await Self.insert(store, Self.dispatch(at: 15))
            #expect(try await store.nextPromotion() == now.addingTimeInterval(10))
            #expect(try await store.listTasks(TaskQuery(status: .scheduled)).total == 2)
            let at16 = now.addingTimeInterval(16)
            let claimedFirst = try await store.claimTasks(coreID: "core", workerID: "w", limit: 5, now: at16) { task in
                try TaskLifecycle.claim(task, workerID: "w", lease: 30, leaseToken: Identifier.make("lease"), now: at16)
            }
            #expect(claimedFirst.tasks.map(\.task.id) == [plain.id])
            let promoted = try await store.promoteTasks(now: at16, limit: 10) { TaskLifecycle.promote($0, now: at16) }
            #expect(promoted.map(\.task.id) == ["task-early"])
            #expect(promoted.first?.events.map(\.type.rawValue) == ["task.ready"])
            #expect(try await store.nextPromotion() == now.addingTimeInterval(20))
            #expect(try await store.task(id: "task-early")?.status == .queued)
            #expect(try await store.listTasks(TaskQuery(status: .scheduled)).total == 1)
            let claimed = try await store.claimTasks(coreID: "core", workerID: "w", limit: 5, now: at16) { task in
                try TaskLifecycle.claim(task, workerID: "w", lease: 30, leaseToken: Identifier.make("lease"), now: at16)
            }
            #expect(claimed.tasks.map(\.task.id) == ["task-early"])
            let at30 = now.addingTimeInterval(30)
            let rest = try await store.promoteTasks(now: at30, limit: 10) { TaskLifecycle.promote($0, now: at30) }
            #expect(rest.map(\.task.id) == ["task-late"])
            #expect(try await store.nextPromotion() == nil)
        }
    }

    /// With several promoters at once (nodes), each due task is promoted exactly once.
    @Test(arguments: backends)
    func concurrentPromotersPromoteEachTaskOnce(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let now = Self.start
            let transitions = (0..<200).map { index in
                TaskLifecycle.dispatch(
                    DispatchRequest(coreID: "core", delay: 5), id: "task-\(index)", createdBy: nil, now: now)
            }
            _ = try await store.insertTasks(transitions, activeSince: now)
            let due = now.addingTimeInterval(5)
            let ids = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let batch = try await store.promoteTasks(now: due, limit: 10) { TaskLifecycle.promote($0, now: due) }
                            if batch.isEmpty { return mine }
                            mine += batch.map(\.task.id)
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(ids.count == 200 && Set(ids).count == 200)
            #expect(try await store.listTasks(TaskQuery(status: .queued)).total == 200)
        }
    }

    @Test(arguments: backends)
    func eventSequenceIsGloballyIncreasingAndFiltersPage(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let task = try await Self.insert(store, Self.dispatch())
            for progress in [10, 20, 30] {
                _ = try await store.modifyTask(id: task.id) { current in
                    try TaskLifecycle.update(current, with: StatusUpdateRequest(status: .running, progress: progress), now: Self.start.addingTimeInterval(Double(progress)))
                }
            }
            let (total, all) = try await store.taskEvents(taskID: task.id, EventQuery())
            #expect(total == 5)
            #expect(all.map(\.type.rawValue) == ["task.created", "task.started", "task.progress", "task.progress", "task.progress"])
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.sequence < $1.sequence })
            let progress = try await store.taskEvents(taskID: task.id, EventQuery(eventType: "task.progress", limit: 2, offset: 1))
            #expect(progress.total == 3 && progress.events.map { $0.data["progress"] } == [20, 30])
            let since = try await store.taskEvents(taskID: task.id, EventQuery(since: Self.start.addingTimeInterval(15)))
            #expect(since.events.count == 2)
            await #expect(throws: OrchError.self) {
                _ = try await store.modifyTask(id: "task-missing") { TaskTransition(task: $0, events: []) }
            }
        }
    }

    /// Queue positions stay exact through a random mix of dispatches (several priorities and
    /// cores), claims, completions (some resident: they requeue), cancellations and delayed
    /// returns: each queued task's position equals its place in the claim order, counted here
    /// by brute force.
    @Test(arguments: backends)
    func queuePositionsStayExactThroughRandomChanges(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            // Seeded, so every run checks the same sequence of changes.
            var generator = SplitMix64(seed: 20_261_127)
            var clock = 0.0
            for _ in 0..<300 {
                clock += 1
                let now = Self.start.addingTimeInterval(clock)
                let core = ["a", "b"].randomElement(using: &generator)!
                switch Int.random(in: 0..<10, using: &generator) {
                case 0..<6:
                    var request = DispatchRequest(coreID: core, priority: Int.random(in: 1...4, using: &generator))
                    request.stay = Int.random(in: 0..<4, using: &generator) == 0
                    let outcome = try await store.insertTask(
                        TaskLifecycle.dispatch(request, id: Identifier.make("task"), createdBy: "u", now: now),
                        idempotency: nil, activeSince: Self.start)
                    guard case .created(let task, _, let standing) = outcome else {
                        Issue.record("not created")
                        continue
                    }
                    // The position answered with the insert is the brute-force claim order's.
                    let order = try await Self.claimOrder(of: core, store)
                    #expect(standing.position == (order.firstIndex(of: task.id) ?? -1) + 1)
                case 6..<8:
                    _ = try await store.claimTasks(coreID: core, workerID: "w", limit: 2, now: now) { task in
                        try TaskLifecycle.claim(task, workerID: "w", lease: 30, leaseToken: Identifier.make("lease"), now: now)
                    }
                default:
                    let (_, tasks) = try await store.listTasks(TaskQuery(limit: 500))
                    guard let task = tasks.filter({ !$0.status.isTerminal }).randomElement(using: &generator) else { continue }
                    let status: TaskStatus = [.completed, .failed, .cancelled].randomElement(using: &generator)!
                    _ = try? await store.modifyTask(id: task.id) { task in
                        try TaskLifecycle.update(task, with: StatusUpdateRequest(status: status), now: now)
                    }
                }
            }
            #expect(try await store.listTasks(TaskQuery(status: .queued, limit: 500)).total > 10)
            // Every filter's total (kept by counts, not counted) agrees with the tasks.
            let (_, everything) = try await store.listTasks(TaskQuery(limit: 500))
            for status in [nil] + TaskStatus.allCases.map(Optional.some) {
                for core in [nil, "a", "b"] {
                    for priority in [nil, 1, 2, 3, 4] {
                        let expected = everything.filter { task in
                            (status == nil || task.status == status) && (core == nil || task.coreID == core)
                                && (priority == nil || task.priority == priority)
                        }.count
                        let total = try await store.listTasks(TaskQuery(status: status, coreID: core, priority: priority)).total
                        #expect(total == expected, "status \(String(describing: status)), core \(String(describing: core)), priority \(String(describing: priority))")
                    }
                }
            }
            for status in TaskStatus.allCases {
                #expect(try await store.countTasks(status: status) == everything.filter { $0.status == status }.count)
            }
            for core in ["a", "b"] {
                for (index, id) in try await Self.claimOrder(of: core, store).enumerated() {
                    let task = try #require(try await store.task(id: id))
                    #expect(try await store.queuePosition(of: task) == index + 1, "core \(core), task \(index + 1)")
                }
            }
        }
    }

    /// The ids of `core`'s queued tasks in claim order, worked out from the whole list:
    /// priority descending, then ready time, then dispatch order.
    static func claimOrder(of core: String, _ store: any Store) async throws -> [String] {
        let (_, all) = try await store.listTasks(TaskQuery(coreID: core, sort: .createdAt, order: .asc, limit: 500))
        let queued = all.filter { $0.status == .queued }
        let dispatchOrder = Dictionary(uniqueKeysWithValues: queued.enumerated().map { ($1.id, $0) })
        return queued.sorted { left, right in
            if left.priority != right.priority { return left.priority > right.priority }
            if left.readyAt != right.readyAt { return left.readyAt < right.readyAt }
            return dispatchOrder[left.id]! < dispatchOrder[right.id]!
        }.map(\.id)
    }

    @Test(arguments: backends)
    func batchInsertStoresEveryTaskInOrderWithSequentialStandings(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            try await Self.insert(store, Self.dispatch(priority: 3))
            let batch = [Self.dispatch(priority: 1), Self.dispatch(priority: 5), Self.dispatch(priority: 1), Self.dispatch("other")]
            let stored = try await store.insertTasks(batch, activeSince: Self.start)
            #expect(stored.map(\.task) == batch.map(\.task))
            #expect(stored.map { $0.events.map(\.type.rawValue) } == Array(repeating: ["task.created"], count: 4))
            // Each as if dispatched alone at its turn: behind the priority-3 task; first; behind
            // the 5, the 3 and the first 1; alone on its core.
            #expect(stored.map(\.standing.position) == [2, 1, 4, 1])
            for entry in stored { #expect(try await store.task(id: entry.task.id) == entry.task) }
        }
    }

    /// A queued task that becomes ready later (a resident task's backoff) stays behind new
    /// tasks of its priority, in single and batch inserts alike.
    @Test(arguments: backends)
    func newTasksGoAheadOfTasksReadyLater(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            var delayed = Self.dispatch(priority: 2)
            delayed.task.readyAt = Self.start.addingTimeInterval(100)
            try await Self.insert(store, delayed)
            let outcome = try await store.insertTask(Self.dispatch(priority: 2), idempotency: nil, activeSince: Self.start)
            guard case .created(let single, _, let standing) = outcome else {
                Issue.record("not created")
                return
            }
            #expect(standing.position == 1)
            let batch = try await store.insertTasks(
                [Self.dispatch(priority: 2), Self.dispatch(priority: 3), Self.dispatch(priority: 2)], activeSince: Self.start)
            #expect(batch.map(\.standing.position) == [2, 1, 4])
            let order = try await Self.claimOrder(of: "core", store)
            #expect(order == [batch[1].task.id, single.id, batch[0].task.id, batch[2].task.id, delayed.task.id])
            #expect(try await store.queuePosition(of: delayed.task) == 5)
        }
    }

    @Test(arguments: backends)
    func batchInsertIsAllOrNothing(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            let existing = try await Self.insert(store, Self.dispatch())
            var clash = Self.dispatch()
            clash.task.id = existing.id
            await #expect(throws: (any Error).self) {
                _ = try await store.insertTasks([Self.dispatch(), Self.dispatch(), clash], activeSince: Self.start)
            }
            #expect(try await store.listTasks(TaskQuery()).total == 1)
            #expect(try await store.taskEvents(taskID: existing.id, EventQuery()).total == 1)
        }
    }

    /// Bulk batches read matching tasks in storage order from a cursor, change those `change`
    /// takes, and count the rest as matched; the filters combine.
    @Test(arguments: backends)
    func bulkBatchesWalkTheMatchingTasksFromACursor(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any Store) async throws in
            var ids: [String] = []
            for index in 0..<7 {
                ids.append(try await Self.insert(store, Self.dispatch(index < 5 ? "bulk" : "other", priority: index % 2 + 1, at: Double(index))).id)
            }
            let filter = TaskFilter(coreID: "bulk")
            #expect(try await store.countTasks(matching: filter) == 5)
            #expect(try await store.countTasks(matching: TaskFilter(coreID: "bulk", priority: 2)) == 2)
            #expect(try await store.countTasks(matching: TaskFilter(createdBefore: Self.start.addingTimeInterval(2))) == 2)
            #expect(try await store.countTasks(matching: TaskFilter(createdAfter: Self.start.addingTimeInterval(5))) == 1)
            #expect(try await store.countTasks(matching: TaskFilter(taskIDs: [ids[0], ids[6], "task-none"])) == 2)
            #expect(try await store.countTasks(matching: TaskFilter(statuses: [.queued, .running])) == 7)
            let now = Self.start.addingTimeInterval(10)
            let cancel: @Sendable (TaskRecord) -> TaskTransition? = { task in
                task.priority == 1
                    ? try? TaskLifecycle.update(task, with: StatusUpdateRequest(status: .cancelled), now: now) : nil
            }
            let first = try await store.modifyTasks(matching: filter, after: nil, limit: 3, cancel)
            #expect(first.matched == 3 && first.changed.map(\.task.id) == [ids[0], ids[2]])
            #expect(first.changed.allSatisfy { $0.task.status == .cancelled && $0.events.map(\.type.rawValue) == ["task.cancelled"] })
            let second = try await store.modifyTasks(matching: filter, after: first.cursor, limit: 3, cancel)
            #expect(second.matched == 2 && second.changed.map(\.task.id) == [ids[4]])
            let done = try await store.modifyTasks(matching: filter, after: second.cursor, limit: 3, cancel)
            #expect(done.matched == 0 && done.cursor == nil)
            #expect(try await store.countTasks(matching: TaskFilter(statuses: [.cancelled])) == 3)
            #expect(try await store.task(id: ids[5])?.status == .queued)
        }
    }
}

/// A small seeded random number generator (SplitMix64), for repeatable random tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }

}
