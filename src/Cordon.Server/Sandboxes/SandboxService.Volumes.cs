using System.Collections.Concurrent;
using System.Security.Cryptography;
using Cordon.Runtime;
using Cordon.Runtime.Interop;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Volumes;

namespace Cordon.Server.Sandboxes;

/// <summary>Volumes: named, size-limited storage owned by a key, mounted into its sandboxes at create, read and
/// written without a sandbox through the file API, outliving every sandbox.</summary>
public sealed partial class SandboxService
{
    /// <summary>Most entries one listing of a volume returns.</summary>
    public const int MaxVolumeListing = 10000;

    /// <summary>Most volumes one sandbox mounts.</summary>
    public const int MaxVolumeMounts = 16;

    private static readonly string[] ReservedMountPaths = ["/proc", "/sys", "/dev", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/.cordon"];

    private readonly ConcurrentDictionary<string, VolumeRecord> _volumes = new(StringComparer.Ordinal);

    public async Task<VolumeRecord> CreateVolumeAsync(CallerIdentity caller, string? name, long? sizeMiB, CancellationToken cancellationToken)
    {
        Require(name is { Length: >= 1 and <= 64 } && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && !name.StartsWith("vol_", StringComparison.Ordinal),
            "A volume name is 1 to 64 letters, digits, '-', '_' or '.', and does not start with 'vol_'.");
        var size = sizeMiB ?? _options.DefaultVolumeMiB;
        Require(size >= 16 && size <= _options.MaxVolumeMiB, $"sizeMiB must be between 16 and {_options.MaxVolumeMiB}; {size} was asked.");
        await _admission.WaitAsync(cancellationToken);
        try
        {
            if (_volumes.Values.Any(v => v.Owner == caller.KeyId && v.Name == name))
            {
                throw new CordonException(ErrorCode.AlreadyExists, $"A volume named '{name}' exists already: use it, or delete it first.") { Subject = name };
            }

            var held = _volumes.Values.Count(v => v.Owner == caller.KeyId);
            if (held >= _options.MaxVolumesPerKey)
            {
                throw new CordonException(ErrorCode.QuotaExceeded, $"Your key holds {held} volumes, its most: delete ones you no longer need and retry.");
            }

            var volume = new VolumeRecord
            {
                Id = "vol_" + RandomNumberGenerator.GetString(IdAlphabet, 20),
                Owner = caller.KeyId,
                Name = name!,
                SizeMiB = size,
                Token = "cvt_" + RandomNumberGenerator.GetString(IdAlphabet, 40),
                CreatedAt = DateTimeOffset.UtcNow,
            };
            try
            {
                await _runtime.CreateVolumeAsync(volume.Id, size, cancellationToken);
            }
            catch (SandboxRuntimeException ex)
            {
                throw new CordonException(ErrorCode.RuntimeFailed, ex.Message, ex) { RetryAfterSeconds = 5 };
            }

            _store.SaveVolume(volume);
            _volumes[volume.Id] = volume;
            _store.Audit(caller.KeyId, "volume.create", volume.Id, name);
            return volume;
        }
        finally
        {
            _admission.Release();
        }
    }

    public IReadOnlyList<VolumeRecord> ListVolumes(CallerIdentity caller)
        => [.. _volumes.Values.Where(v => caller.CanSee(v.Owner)).OrderBy(v => v.CreatedAt)];

    /// <summary>A volume of the caller's, by id or name.</summary>
    public VolumeRecord GetVolume(CallerIdentity caller, string idOrName)
        => (_volumes.TryGetValue(idOrName, out var byId) && caller.CanSee(byId.Owner) ? byId : null)
           ?? _volumes.Values.FirstOrDefault(v => v.Name == idOrName && v.Owner == caller.KeyId)
           ?? throw new CordonException(ErrorCode.VolumeNotFound, $"No volume '{Shorten(idOrName)}' exists for this API key.") { Subject = idOrName };

    /// <summary>The volume whose content token this is (E2B's volume content API), or null.</summary>
    public VolumeRecord? VolumeByToken(string id, string token)
        => _volumes.TryGetValue(id, out var volume)
           && CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(volume.Token), System.Text.Encoding.UTF8.GetBytes(token))
            ? volume
            : null;

    /// <summary>Live sandboxes (stopped ones too) that mount the volume.</summary>
    public int VolumeUsers(string volumeId) => _live.Values.Count(r => r.Volumes.Any(v => v.Volume == volumeId));

    /// <summary>Deletes a volume and its files; refused while a sandbox mounts it. Deleting one that is gone does nothing.</summary>
    public async Task DeleteVolumeAsync(CallerIdentity caller, string idOrName, CancellationToken cancellationToken)
    {
        VolumeRecord volume;
        try
        {
            volume = GetVolume(caller, idOrName);
        }
        catch (CordonException)
        {
            return;
        }

        await _admission.WaitAsync(cancellationToken); // no create mounts it meanwhile
        try
        {
            if (VolumeUsers(volume.Id) is > 0 and var users)
            {
                throw new CordonException(ErrorCode.VolumeInUse, $"{users} sandbox(es) mount volume '{volume.Name}': destroy them first.") { Subject = volume.Id };
            }

            try
            {
                await _runtime.DeleteVolumeAsync(volume.Id, cancellationToken);
            }
            catch (SandboxRuntimeException ex)
            {
                throw new CordonException(ErrorCode.RuntimeFailed, ex.Message, ex) { RetryAfterSeconds = 5 };
            }

            _volumes.TryRemove(volume.Id, out _);
            _store.DeleteVolume(volume.Id);
            _store.Audit(caller.KeyId, "volume.delete", volume.Id, volume.Name);
        }
        finally
        {
            _admission.Release();
        }
    }

    /// <summary>The entry at a path of the volume (a symlink shown, not followed).</summary>
    public Task<VolumeFile> StatVolumeAsync(VolumeRecord volume, string? path)
        => OnVolumeAsync(volume, files => Task.FromResult(ToFile(files.Stat(path ?? "/"))));

    /// <summary>A directory of the volume, <paramref name="depth"/> levels deep.</summary>
    public Task<IReadOnlyList<VolumeFile>> ListVolumeAsync(VolumeRecord volume, string? path, int depth)
        => OnVolumeAsync(volume, files => Task.FromResult<IReadOnlyList<VolumeFile>>([.. files.List(path ?? "/", depth, MaxVolumeListing).Select(ToFile)]));

    /// <summary>A regular file of the volume, to read.</summary>
    public Task<Stream> ReadVolumeFileAsync(VolumeRecord volume, string? path)
        => OnVolumeAsync(volume, files => Task.FromResult(files.OpenRead(path ?? "")));

    /// <summary>Writes a file of the volume (parents made as needed); it replaces the old one once complete.</summary>
    public Task<VolumeFile> WriteVolumeFileAsync(VolumeRecord volume, string? path, Stream content, uint? mode, int? uid, int? gid, CancellationToken cancellationToken)
        => OnVolumeAsync(volume, async files => ToFile(await files.WriteAsync(path ?? "", content, mode, uid, gid, cancellationToken)));

    public Task<VolumeFile> MakeVolumeDirectoryAsync(VolumeRecord volume, string? path, uint? mode, int? uid, int? gid)
        => OnVolumeAsync(volume, files => Task.FromResult(ToFile(files.MakeDirectory(path ?? "", mode, uid, gid))));

    /// <summary>Changes an entry's owner and mode.</summary>
    public Task<VolumeFile> SetVolumeMetadataAsync(VolumeRecord volume, string? path, uint? mode, int? uid, int? gid)
        => OnVolumeAsync(volume, files => Task.FromResult(ToFile(files.SetMetadata(path ?? "", mode, uid, gid))));

    /// <summary>Removes a file, a symlink or a directory with everything in it.</summary>
    public Task RemoveVolumePathAsync(VolumeRecord volume, string? path)
        => OnVolumeAsync(volume, files =>
        {
            files.Remove(path ?? "");
            return Task.FromResult(0);
        });

    private static VolumeFile ToFile(VolumeEntry e) => new(e.Name, e.Path, e.Type, e.Size, e.Mode, e.Uid, e.Gid, e.AccessedAt, e.ModifiedAt, e.ChangedAt, e.Target);

    /// <summary>Runs a file operation on a volume, its failures as the service's errors.</summary>
    private async Task<T> OnVolumeAsync<T>(VolumeRecord volume, Func<VolumeFiles, Task<T>> operation)
    {
        try
        {
            return await operation(_runtime.VolumeFiles(volume.Id));
        }
        catch (FileNotFoundException ex)
        {
            throw new CordonException(ErrorCode.FileNotFound, ex.Message, ex);
        }
        catch (ArgumentException ex)
        {
            throw CordonException.Invalid(ex.Message);
        }
        catch (IOException ex) when (ex.HResult == 28)
        {
            throw new CordonException(ErrorCode.DiskFull, ex.Message, ex);
        }
        catch (IOException ex) when (ex.HResult is 17 or 20 or 21 or 39)
        {
            throw new CordonException(ErrorCode.Conflict, ex.Message, ex);
        }
        catch (IOException ex) when (ex.HResult == 27)
        {
            throw new CordonException(ErrorCode.ResultTooLarge, ex.Message, ex);
        }
        catch (IOException ex)
        {
            throw new CordonException(ErrorCode.InvalidRequest, ex.Message, ex);
        }
        catch (SandboxRuntimeException ex)
        {
            throw new CordonException(ErrorCode.RuntimeFailed, ex.Message, ex) { RetryAfterSeconds = 5 };
        }
    }

    /// <summary>A create's volume mounts resolved to the caller's volumes, their paths checked.</summary>
    private List<SandboxVolume> ResolveVolumes(CallerIdentity caller, IReadOnlyList<SandboxVolume>? asked)
    {
        var resolved = new List<SandboxVolume>();
        if (asked is null)
        {
            return resolved;
        }

        Require(asked.Count <= MaxVolumeMounts, $"A sandbox mounts at most {MaxVolumeMounts} volumes; {asked.Count} were asked.");
        foreach (var mount in asked)
        {
            var path = mount.Path ?? "";
            Require(path.StartsWith('/') && path.Length is > 1 and <= 1024 && !path.Contains('\0', StringComparison.Ordinal)
                && path.Split('/', StringSplitOptions.RemoveEmptyEntries).All(p => p is not ("." or "..")) && !path.EndsWith('/'),
                $"A volume's path must be an absolute path without '.' or '..' parts, not '/' ('{Shorten(path)}' was asked).");
            Require(!ReservedMountPaths.Any(r => path == r || path.StartsWith(r + "/", StringComparison.Ordinal)),
                $"A volume cannot be mounted at '{Shorten(path)}': {string.Join(", ", ReservedMountPaths)} are the sandbox's own.");
            Require(resolved.All(r => r.Path != path), $"Two volumes are mounted at '{Shorten(path)}'.");
            resolved.Add(mount with { Volume = GetVolume(caller, mount.Volume).Id });
        }

        return resolved;
    }

    private void LoadVolumes()
    {
        foreach (var volume in _store.LoadVolumes())
        {
            _volumes[volume.Id] = volume;
        }
    }
}
