using System.Text.Json;
using Cordon.Protocol.Api;
using Cordon.Server.Sandboxes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace Cordon.Server.State;

/// <summary>Everything Cordon must not lose, in SQLite under the data directory: sandboxes and their
/// history, images, API keys and the audit log. Every write is committed before the API acknowledges it.</summary>
public sealed class StateStore
{
    private const int SchemaVersion = 8;
    private readonly string _connectionString;

    public StateStore(IOptions<CordonOptions> options)
    {
        // SECURITY: the data directory is traversed by each sandbox's host ids on the way to its own directory
        // (0711, no listing); the database (keys' hashes, secrets, every sandbox's metadata) is root's alone, and
        // SQLite gives its -wal and -shm files the database file's mode.
        Directory.CreateDirectory(options.Value.DataDir);
        File.SetUnixFileMode(options.Value.DataDir, Runtime.Modes.TraverseOnly);
        var database = Path.Combine(options.Value.DataDir, "cordon.db");
        using (File.Open(database, new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, UnixCreateMode = Runtime.Modes.RootReadWrite }))
        {
        }

        File.SetUnixFileMode(database, Runtime.Modes.RootReadWrite);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(options.Value.DataDir, "cordon.db"),
            Pooling = true,
            ForeignKeys = true,
            DefaultTimeout = 5, // seconds; also SQLite's busy timeout
        }.ToString();
        Migrate();
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();

        // Per connection, not per database: without it every pooled connection but the first commits with an fsync
        // of the WAL (measured: 4 per create → exec → destroy, and 150–300 ms stalls of every create and destroy once
        // other sandboxes write to the disk). With WAL, NORMAL loses nothing to a crash of the server (kill -9), only
        // the last commits to a crash of the host.
        // Checkpoints (each an fsync) run in the background (StateCheckpointer), not in the commit that fills the
        // WAL past SQLite's default 1,000 pages; this larger threshold only backs that up.
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 16000;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    /// <summary>Copies the WAL's committed pages into the database without waiting for readers or writers (an fsync
    /// when there is something to copy).</summary>
    public void Checkpoint()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
        command.ExecuteNonQuery();
    }

    private void Migrate()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            CREATE TABLE IF NOT EXISTS sandboxes (
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, image TEXT NOT NULL, runtime TEXT NOT NULL,
                cpu REAL NOT NULL, memory_mib INTEGER NOT NULL, disk_mib INTEGER NOT NULL, max_processes INTEGER NOT NULL,
                state TEXT NOT NULL, created_at TEXT NOT NULL, timeout_seconds INTEGER NOT NULL, expires_at TEXT,
                ended_at TEXT, end_reason TEXT, metadata TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS sandboxes_state ON sandboxes(state);
            CREATE TABLE IF NOT EXISTS sandbox_events (
                sandbox_id TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS sandbox_events_id ON sandbox_events(sandbox_id);
            CREATE TABLE IF NOT EXISTS images (
                name TEXT PRIMARY KEY, status TEXT NOT NULL, digest TEXT, layers TEXT NOT NULL, config TEXT NOT NULL,
                size_bytes INTEGER NOT NULL, created_at TEXT NOT NULL, message TEXT);
            CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, admin INTEGER NOT NULL, created_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS audit_log (
                at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT, detail TEXT);
            CREATE TABLE IF NOT EXISTS server_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS secrets (
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, hosts TEXT NOT NULL,
                metadata TEXT NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                UNIQUE (owner, name));
            CREATE TABLE IF NOT EXISTS volumes (
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, size_mib INTEGER NOT NULL, token TEXT NOT NULL,
                created_at TEXT NOT NULL, UNIQUE (owner, name));
            CREATE TABLE IF NOT EXISTS snapshots (
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT, sandbox_id TEXT NOT NULL, image TEXT NOT NULL,
                layers TEXT NOT NULL, user TEXT NOT NULL, disk_mib INTEGER NOT NULL, created_at TEXT NOT NULL, ready INTEGER NOT NULL,
                UNIQUE (owner, name));
            CREATE TABLE IF NOT EXISTS warm_pools (image TEXT PRIMARY KEY, size INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS build_cache (key TEXT PRIMARY KEY, snapshot TEXT NOT NULL, used_at TEXT NOT NULL);
            """;
        command.ExecuteNonQuery();

        // Version 2: the user commands run as by default (the image's), kept so an adopted sandbox keeps it.
        command.CommandText = "PRAGMA user_version;";
        var version = Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        if (version < 2 && !Columns(connection, "sandboxes").Contains("user"))
        {
            command.CommandText = "ALTER TABLE sandboxes ADD COLUMN user TEXT NOT NULL DEFAULT 'root';";
            command.ExecuteNonQuery();
        }

        // Version 3: whether a sandbox's web ports are public (E2B's allowPublicTraffic); earlier ones are not.
        if (version < 3 && !Columns(connection, "sandboxes").Contains("public_ports"))
        {
            command.CommandText = "ALTER TABLE sandboxes ADD COLUMN public_ports INTEGER NOT NULL DEFAULT 0;";
            command.ExecuteNonQuery();
        }

        // Version 4: a key's own quotas (JSON), over the server's defaults.
        if (version < 4 && !Columns(connection, "api_keys").Contains("quotas"))
        {
            command.CommandText = "ALTER TABLE api_keys ADD COLUMN quotas TEXT;";
            command.ExecuteNonQuery();
        }

        // Version 5: a sandbox's network policy (JSON); earlier sandboxes had loopback only.
        if (version < 5 && !Columns(connection, "sandboxes").Contains("network"))
        {
            command.CommandText = "ALTER TABLE sandboxes ADD COLUMN network TEXT NOT NULL DEFAULT '{}';";
            command.ExecuteNonQuery();
        }

        // Version 7: a sandbox's timers, snapshots, environment and stop time (JSON).
        if (version < 7 && !Columns(connection, "sandboxes").Contains("lifecycle"))
        {
            command.CommandText = "ALTER TABLE sandboxes ADD COLUMN lifecycle TEXT NOT NULL DEFAULT '{}';";
            command.ExecuteNonQuery();
        }

        command.CommandText = $"PRAGMA user_version = {SchemaVersion};";
        command.ExecuteNonQuery();
    }

    private static HashSet<string> Columns(SqliteConnection connection, string table)
    {
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT name FROM pragma_table_info('{table}')";
        using var reader = command.ExecuteReader();
        var names = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read())
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    /// <summary>States and end reasons are stored as their lowercase names, as the API shows them.</summary>
    private static string Stored<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();

    private static T Parse<T>(string stored) where T : struct, Enum => Enum.Parse<T>(stored, ignoreCase: true);

    // ---- sandboxes ------------------------------------------------------------------------------

    public void SaveSandbox(SandboxRecord record)
    {
        using var connection = Open();
        SaveSandbox(connection, record);
    }

    /// <summary>Saves a sandbox's new state and its history entry in one transaction: a reader never sees the one
    /// without the other.</summary>
    public void SaveSandbox(SandboxRecord record, string eventKind, string eventMessage)
        => SaveSandbox(record, eventKind, eventMessage, audit: null);

    /// <summary>Saves a sandbox's new state, its history entry and the audit entry in one transaction.</summary>
    public void SaveSandbox(SandboxRecord record, string eventKind, string eventMessage, string actor, string action, string? detail)
        => SaveSandbox(record, eventKind, eventMessage, (actor, action, detail));

    private void SaveSandbox(SandboxRecord record, string eventKind, string eventMessage, (string Actor, string Action, string? Detail)? audit)
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        SaveSandbox(connection, record);
        Insert(connection, "INSERT INTO sandbox_events (sandbox_id, at, kind, message) VALUES ($1, $2, $3, $4)",
            record.Id, DateTimeOffset.UtcNow.ToString("O"), eventKind, eventMessage);
        Insert(connection, TrimEventsSql, record.Id);
        if (audit is { } entry)
        {
            Insert(connection, "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
                DateTimeOffset.UtcNow.ToString("O"), entry.Actor, entry.Action, record.Id, entry.Detail);
        }

        transaction.Commit();
    }

    private static void Insert(SqliteConnection connection, string sql, params object?[] values)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters.AddWithValue("$" + (i + 1), values[i] ?? DBNull.Value);
        }

        command.ExecuteNonQuery();
    }

    private static void SaveSandbox(SqliteConnection connection, SandboxRecord record)
    {
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO sandboxes (id, owner, image, runtime, cpu, memory_mib, disk_mib, max_processes, user, state, created_at,
                                   timeout_seconds, expires_at, ended_at, end_reason, metadata, public_ports, network, lifecycle)
            VALUES ($id, $owner, $image, $runtime, $cpu, $memory, $disk, $pids, $user, $state, $created, $timeout, $expires, $ended, $reason, $metadata, $public, $network, $lifecycle)
            ON CONFLICT(id) DO UPDATE SET state = $state, timeout_seconds = $timeout, expires_at = $expires,
                                          ended_at = $ended, end_reason = $reason, network = $network, lifecycle = $lifecycle;
            """;
        command.Parameters.AddWithValue("$id", record.Id);
        command.Parameters.AddWithValue("$owner", record.Owner);
        command.Parameters.AddWithValue("$image", record.Image);
        command.Parameters.AddWithValue("$runtime", record.Runtime);
        command.Parameters.AddWithValue("$cpu", record.Cpu);
        command.Parameters.AddWithValue("$memory", record.MemoryMiB);
        command.Parameters.AddWithValue("$disk", record.DiskMiB);
        command.Parameters.AddWithValue("$pids", record.MaxProcesses);
        command.Parameters.AddWithValue("$user", record.User);
        command.Parameters.AddWithValue("$state", Stored(record.State));
        command.Parameters.AddWithValue("$created", record.CreatedAt.ToString("O"));
        command.Parameters.AddWithValue("$timeout", record.TimeoutSeconds);
        command.Parameters.AddWithValue("$expires", (object?)record.ExpiresAt?.ToString("O") ?? DBNull.Value);
        command.Parameters.AddWithValue("$ended", (object?)record.EndedAt?.ToString("O") ?? DBNull.Value);
        command.Parameters.AddWithValue("$reason", record.EndReason is { } reason ? Stored(reason) : DBNull.Value);
        command.Parameters.AddWithValue("$metadata", JsonSerializer.Serialize(record.Metadata));
        command.Parameters.AddWithValue("$public", record.PublicPorts ? 1 : 0);
        command.Parameters.AddWithValue("$network", StoredNetwork.Of(record.Network));
        command.Parameters.AddWithValue("$lifecycle", StoredLifecycle.Of(record));
        command.ExecuteNonQuery();
    }

    /// <summary>Sandboxes in the given states (all when empty).</summary>
    public List<SandboxRecord> LoadSandboxes(params SandboxState[] states) => QuerySandboxes(null, states);

    public SandboxRecord? LoadSandbox(string id) => QuerySandboxes(id, []).FirstOrDefault();

    private List<SandboxRecord> QuerySandboxes(string? id, SandboxState[] states)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, owner, image, runtime, cpu, memory_mib, disk_mib, max_processes, state, created_at, timeout_seconds, expires_at, ended_at, end_reason, metadata, user, public_ports, network, lifecycle FROM sandboxes";
        if (id is not null)
        {
            command.CommandText += " WHERE id = $id";
            command.Parameters.AddWithValue("$id", id);
        }
        else if (states.Length > 0)
        {
            command.CommandText += " WHERE state IN (" + string.Join(',', states.Select((_, i) => "$s" + i)) + ")";
            for (var i = 0; i < states.Length; i++)
            {
                command.Parameters.AddWithValue("$s" + i, Stored(states[i]));
            }
        }

        using var reader = command.ExecuteReader();
        var records = new List<SandboxRecord>();
        while (reader.Read())
        {
            var lifecycle = StoredLifecycle.Parse(reader.GetString(18));
            records.Add(new SandboxRecord
            {
                Id = reader.GetString(0),
                Owner = reader.GetString(1),
                Image = reader.GetString(2),
                Runtime = reader.GetString(3),
                Cpu = reader.GetDouble(4),
                MemoryMiB = reader.GetInt64(5),
                DiskMiB = reader.GetInt64(6),
                MaxProcesses = reader.GetInt32(7),
                State = Parse<SandboxState>(reader.GetString(8)),
                CreatedAt = DateTimeOffset.Parse(reader.GetString(9)),
                TimeoutSeconds = reader.GetInt32(10),
                ExpiresAt = reader.IsDBNull(11) ? null : DateTimeOffset.Parse(reader.GetString(11)),
                EndedAt = reader.IsDBNull(12) ? null : DateTimeOffset.Parse(reader.GetString(12)),
                EndReason = reader.IsDBNull(13) ? null : Parse<EndReason>(reader.GetString(13)),
                Metadata = JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(14)) ?? [],
                User = reader.GetString(15),
                PublicPorts = reader.GetInt64(16) != 0,
                Network = StoredNetwork.Parse(reader.GetString(17)),
                Timers = lifecycle.Timers,
                Snapshots = lifecycle.Snapshots,
                Env = lifecycle.Env,
                StoppedAt = lifecycle.StoppedAt,
                Volumes = lifecycle.Volumes,
            });
        }

        return records;
    }

    /// <summary>Most history entries kept per sandbox: the newest (a tenant can add one with every timeout change).</summary>
    public const int MaxEventsPerSandbox = 1000;

    /// <summary>Drops a sandbox's oldest history entries beyond <see cref="MaxEventsPerSandbox"/> (the OFFSET);
    /// parameter $1 is its id.</summary>
    private const string TrimEventsSql = """
        DELETE FROM sandbox_events WHERE sandbox_id = $1 AND rowid <= (
            SELECT rowid FROM sandbox_events WHERE sandbox_id = $1 ORDER BY rowid DESC LIMIT 1 OFFSET 1000)
        """;

    /// <summary>Forgets sandboxes that ended before <paramref name="before"/>, with their history, and audit
    /// entries older than <paramref name="auditBefore"/>.</summary>
    public int PurgeEnded(DateTimeOffset before, DateTimeOffset auditBefore)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            DELETE FROM sandbox_events WHERE sandbox_id IN (SELECT id FROM sandboxes WHERE state = 'ended' AND ended_at < $before);
            DELETE FROM sandboxes WHERE state = 'ended' AND ended_at < $before;
            DELETE FROM audit_log WHERE at < $audit;
            """;
        command.Parameters.AddWithValue("$before", before.ToString("O"));
        command.Parameters.AddWithValue("$audit", auditBefore.ToString("O"));
        return command.ExecuteNonQuery();
    }

    /// <summary>How many audit entries are kept.</summary>
    public int CountAudit()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM audit_log";
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public void AddEvent(string sandboxId, string kind, string message)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO sandbox_events (sandbox_id, at, kind, message) VALUES ($id, $at, $kind, $message)";
        command.Parameters.AddWithValue("$id", sandboxId);
        command.Parameters.AddWithValue("$at", DateTimeOffset.UtcNow.ToString("O"));
        command.Parameters.AddWithValue("$kind", kind);
        command.Parameters.AddWithValue("$message", message);
        command.ExecuteNonQuery();
        Insert(connection, TrimEventsSql, sandboxId);
    }

    public List<SandboxEvent> LoadEvents(string sandboxId)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT at, kind, message FROM sandbox_events WHERE sandbox_id = $id ORDER BY rowid";
        command.Parameters.AddWithValue("$id", sandboxId);
        using var reader = command.ExecuteReader();
        var events = new List<SandboxEvent>();
        while (reader.Read())
        {
            events.Add(new SandboxEvent(DateTimeOffset.Parse(reader.GetString(0)), reader.GetString(1), reader.GetString(2)));
        }

        return events;
    }

    public void Audit(string actor, string action, string? target, string? detail = null)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($at, $actor, $action, $target, $detail)";
        command.Parameters.AddWithValue("$at", DateTimeOffset.UtcNow.ToString("O"));
        command.Parameters.AddWithValue("$actor", actor);
        command.Parameters.AddWithValue("$action", action);
        command.Parameters.AddWithValue("$target", (object?)target ?? DBNull.Value);
        command.Parameters.AddWithValue("$detail", (object?)detail ?? DBNull.Value);
        command.ExecuteNonQuery();
    }

    // ---- snapshots ------------------------------------------------------------------------------

    public void SaveSnapshot(Snapshots.SnapshotRecord snapshot)
    {
        using var connection = Open();
        Insert(connection, """
            INSERT INTO snapshots (id, owner, name, sandbox_id, image, layers, user, disk_mib, created_at, ready)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT(id) DO UPDATE SET ready = $10
            """, snapshot.Id, snapshot.Owner, snapshot.Name, snapshot.SandboxId, snapshot.Image, JsonSerializer.Serialize(snapshot.Layers),
            snapshot.User, snapshot.DiskMiB, snapshot.CreatedAt.ToString("O"), snapshot.Ready ? 1 : 0);
    }

    public void DeleteSnapshot(string id)
    {
        using var connection = Open();
        Insert(connection, "DELETE FROM snapshots WHERE id = $1", id);
    }

    public List<Snapshots.SnapshotRecord> LoadSnapshots()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, owner, name, sandbox_id, image, layers, user, disk_mib, created_at, ready FROM snapshots ORDER BY created_at";
        using var reader = command.ExecuteReader();
        var snapshots = new List<Snapshots.SnapshotRecord>();
        while (reader.Read())
        {
            snapshots.Add(new Snapshots.SnapshotRecord
            {
                Id = reader.GetString(0),
                Owner = reader.GetString(1),
                Name = reader.IsDBNull(2) ? null : reader.GetString(2),
                SandboxId = reader.GetString(3),
                Image = reader.GetString(4),
                Layers = JsonSerializer.Deserialize<List<string>>(reader.GetString(5)) ?? [],
                User = reader.GetString(6),
                DiskMiB = reader.GetInt64(7),
                CreatedAt = DateTimeOffset.Parse(reader.GetString(8)),
                Ready = reader.GetInt64(9) != 0,
            });
        }

        return snapshots;
    }

    // ---- volumes --------------------------------------------------------------------------------

    /// <summary>Warm-pool sizes set through the API (over the settings'), by image.</summary>
    public Dictionary<string, int> LoadWarmPools()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT image, size FROM warm_pools";
        using var reader = command.ExecuteReader();
        var pools = new Dictionary<string, int>(StringComparer.Ordinal);
        while (reader.Read())
        {
            pools[reader.GetString(0)] = reader.GetInt32(1);
        }

        return pools;
    }

    public void SaveWarmPool(string image, int size)
    {
        using var connection = Open();
        Insert(connection, "INSERT INTO warm_pools (image, size) VALUES ($1, $2) ON CONFLICT (image) DO UPDATE SET size = excluded.size", image, size);
    }

    public void SaveVolume(Volumes.VolumeRecord volume)
    {
        using var connection = Open();
        Insert(connection, "INSERT INTO volumes (id, owner, name, size_mib, token, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            volume.Id, volume.Owner, volume.Name, volume.SizeMiB, volume.Token, volume.CreatedAt.ToString("O"));
    }

    public void DeleteVolume(string id)
    {
        using var connection = Open();
        Insert(connection, "DELETE FROM volumes WHERE id = $1", id);
    }

    public List<Volumes.VolumeRecord> LoadVolumes()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, owner, name, size_mib, token, created_at FROM volumes ORDER BY created_at";
        using var reader = command.ExecuteReader();
        var volumes = new List<Volumes.VolumeRecord>();
        while (reader.Read())
        {
            volumes.Add(new Volumes.VolumeRecord
            {
                Id = reader.GetString(0),
                Owner = reader.GetString(1),
                Name = reader.GetString(2),
                SizeMiB = reader.GetInt64(3),
                Token = reader.GetString(4),
                CreatedAt = DateTimeOffset.Parse(reader.GetString(5)),
            });
        }

        return volumes;
    }

    // ---- images ---------------------------------------------------------------------------------

    public void SaveImage(ImageInfo image)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO images (name, status, digest, layers, config, size_bytes, created_at, message)
            VALUES ($name, $status, $digest, $layers, $config, $size, $created, $message)
            ON CONFLICT(name) DO UPDATE SET status = $status, digest = $digest, layers = $layers, config = $config,
                                            size_bytes = $size, created_at = $created, message = $message;
            """;
        command.Parameters.AddWithValue("$name", image.Name);
        command.Parameters.AddWithValue("$status", image.Status);
        command.Parameters.AddWithValue("$digest", (object?)image.Digest ?? DBNull.Value);
        command.Parameters.AddWithValue("$layers", JsonSerializer.Serialize(image.Layers));
        command.Parameters.AddWithValue("$config", JsonSerializer.Serialize(new StoredImageConfig(image.Env, image.User, image.WorkingDir) { Snapshots = image.Snapshots, Entrypoint = image.Entrypoint, Cmd = image.Cmd, StartCmd = image.StartCmd, ReadyCmd = image.ReadyCmd }));
        command.Parameters.AddWithValue("$size", image.SizeBytes);
        command.Parameters.AddWithValue("$created", image.CreatedAt.ToString("O"));
        command.Parameters.AddWithValue("$message", (object?)image.Message ?? DBNull.Value);
        command.ExecuteNonQuery();
    }

    public List<ImageInfo> LoadImages() => QueryImages(null);

    /// <summary>One image by name (a create reads only the image it starts from).</summary>
    public ImageInfo? LoadImage(string name) => QueryImages(name).FirstOrDefault();

    private List<ImageInfo> QueryImages(string? name)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, status, digest, layers, config, size_bytes, created_at, message FROM images"
            + (name is null ? "" : " WHERE name = $name") + " ORDER BY name";
        if (name is not null)
        {
            command.Parameters.AddWithValue("$name", name);
        }

        using var reader = command.ExecuteReader();
        var images = new List<ImageInfo>();
        while (reader.Read())
        {
            var config = JsonSerializer.Deserialize<StoredImageConfig>(reader.GetString(4)) ?? new StoredImageConfig(new Dictionary<string, string>(), "root", "/");
            images.Add(new ImageInfo
            {
                Name = reader.GetString(0),
                Status = reader.GetString(1),
                Digest = reader.IsDBNull(2) ? null : reader.GetString(2),
                Layers = JsonSerializer.Deserialize<List<string>>(reader.GetString(3)) ?? [],
                Env = config.Env,
                User = config.User,
                WorkingDir = config.WorkingDir,
                Snapshots = config.Snapshots ?? [],
                Entrypoint = config.Entrypoint,
                Cmd = config.Cmd,
                StartCmd = config.StartCmd,
                ReadyCmd = config.ReadyCmd,
                SizeBytes = reader.GetInt64(5),
                CreatedAt = DateTimeOffset.Parse(reader.GetString(6)),
                Message = reader.IsDBNull(7) ? null : reader.GetString(7),
            });
        }

        return images;
    }

    public void DeleteImage(string name)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM images WHERE name = $name";
        command.Parameters.AddWithValue("$name", name);
        command.ExecuteNonQuery();
    }

    // ---- build cache ----------------------------------------------------------------------------

    /// <summary>The snapshot a build step made, by the step's cache key; marks it used now.</summary>
    public string? UseBuildCache(string key)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE build_cache SET used_at = $now WHERE key = $key RETURNING snapshot";
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$now", DateTimeOffset.UtcNow.ToString("O"));
        return command.ExecuteScalar() as string;
    }

    /// <summary>Records a step's snapshot, then forgets the least recently used entries beyond <paramref name="keep"/>
    /// (their snapshots go once nothing else uses them).</summary>
    public void SaveBuildCache(string key, string snapshot, int keep)
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO build_cache (key, snapshot, used_at) VALUES ($key, $snapshot, $now)
            ON CONFLICT(key) DO UPDATE SET snapshot = $snapshot, used_at = $now;
            DELETE FROM build_cache WHERE key NOT IN (SELECT key FROM build_cache ORDER BY used_at DESC LIMIT $keep);
            """;
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$snapshot", snapshot);
        command.Parameters.AddWithValue("$now", DateTimeOffset.UtcNow.ToString("O"));
        command.Parameters.AddWithValue("$keep", keep);
        command.ExecuteNonQuery();
        transaction.Commit();
    }

    /// <summary>Every snapshot the build cache holds.</summary>
    public HashSet<string> BuildCacheSnapshots()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT DISTINCT snapshot FROM build_cache";
        using var reader = command.ExecuteReader();
        var snapshots = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read())
        {
            snapshots.Add(reader.GetString(0));
        }

        return snapshots;
    }

    /// <summary>Empties the build cache; returns how many entries it had.</summary>
    public int ClearBuildCache()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM build_cache";
        return command.ExecuteNonQuery();
    }

    // ---- server secrets -------------------------------------------------------------------------

    /// <summary>A secret of the server's own (a signing key): created once with <paramref name="create"/>, then the
    /// same on every start.</summary>
    public byte[] LoadOrCreateSecret(string name, Func<byte[]> create)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO server_secrets (name, value) VALUES ($name, $value) ON CONFLICT(name) DO NOTHING";
        command.Parameters.AddWithValue("$name", name);
        command.Parameters.AddWithValue("$value", create());
        command.ExecuteNonQuery();
        command.CommandText = "SELECT value FROM server_secrets WHERE name = $name";
        return (byte[])command.ExecuteScalar()!;
    }

    // ---- tenants' secrets ------------------------------------------------------------------------

    public void SaveSecret(Secrets.SecretRecord secret)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT OR REPLACE INTO secrets (id, owner, name, value, hosts, metadata, version, created_at, updated_at)
            VALUES ($id, $owner, $name, $value, $hosts, $metadata, $version, $created, $updated)
            """;
        command.Parameters.AddWithValue("$id", secret.Id);
        command.Parameters.AddWithValue("$owner", secret.Owner);
        command.Parameters.AddWithValue("$name", secret.Name);
        command.Parameters.AddWithValue("$value", secret.Value);
        command.Parameters.AddWithValue("$hosts", JsonSerializer.Serialize(secret.Hosts));
        command.Parameters.AddWithValue("$metadata", JsonSerializer.Serialize(secret.Metadata));
        command.Parameters.AddWithValue("$version", secret.Version);
        command.Parameters.AddWithValue("$created", secret.CreatedAt.ToString("O"));
        command.Parameters.AddWithValue("$updated", secret.UpdatedAt.ToString("O"));
        command.ExecuteNonQuery();
    }

    public void DeleteSecret(string id)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM secrets WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        command.ExecuteNonQuery();
    }

    public List<Secrets.SecretRecord> LoadSecrets()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, owner, name, value, hosts, metadata, version, created_at, updated_at FROM secrets";
        using var reader = command.ExecuteReader();
        var secrets = new List<Secrets.SecretRecord>();
        while (reader.Read())
        {
            secrets.Add(new Secrets.SecretRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                JsonSerializer.Deserialize<string[]>(reader.GetString(4)) ?? [],
                JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(5)) ?? [],
                reader.GetInt64(6), DateTimeOffset.Parse(reader.GetString(7)), DateTimeOffset.Parse(reader.GetString(8))));
        }

        return secrets;
    }

    // ---- API keys -------------------------------------------------------------------------------

    public void SaveApiKey(ApiKeyRecord key)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT OR REPLACE INTO api_keys (id, name, hash, admin, created_at, quotas) VALUES ($id, $name, $hash, $admin, $created, $quotas)";
        command.Parameters.AddWithValue("$id", key.Id);
        command.Parameters.AddWithValue("$name", key.Name);
        command.Parameters.AddWithValue("$hash", key.Hash);
        command.Parameters.AddWithValue("$admin", key.Admin ? 1 : 0);
        command.Parameters.AddWithValue("$created", key.CreatedAt.ToString("O"));
        command.Parameters.AddWithValue("$quotas", key.Quotas is null ? DBNull.Value : JsonSerializer.Serialize(key.Quotas));
        command.ExecuteNonQuery();
    }

    public void DeleteApiKey(string id)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM api_keys WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        command.ExecuteNonQuery();
    }

    public List<ApiKeyRecord> LoadApiKeys()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, name, hash, admin, created_at, quotas FROM api_keys";
        using var reader = command.ExecuteReader();
        var keys = new List<ApiKeyRecord>();
        while (reader.Read())
        {
            keys.Add(new ApiKeyRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3) == 1, DateTimeOffset.Parse(reader.GetString(4)),
                reader.IsDBNull(5) ? null : JsonSerializer.Deserialize<Auth.KeyQuotas>(reader.GetString(5))));
        }

        return keys;
    }

    private sealed record StoredImageConfig(IReadOnlyDictionary<string, string> Env, string User, string WorkingDir)
    {
        public IReadOnlyList<string>? Snapshots { get; init; }

        public IReadOnlyList<string>? Entrypoint { get; init; }

        public IReadOnlyList<string>? Cmd { get; init; }

        public string? StartCmd { get; init; }

        public string? ReadyCmd { get; init; }
    }
}
