// MSBuild inline task (RoslynCodeTaskFactory, compiled for netstandard2.0: no spans, no newer File APIs), compiled by build/TorchSharpNative.targets.
// It rewrites one ELF version-needed entry of libLibTorchSharp.so, GLIBCXX_3.4.32 -> GLIBCXX_3.4.30,
// in build and publish outputs only, and only where the host's libstdc++ lacks GLIBCXX_3.4.32.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
#nullable disable

public class PatchLibTorchSharpGlibcxx : Task
{
    const string Wanted = "GLIBCXX_3.4.32";
    const string Replacement = "GLIBCXX_3.4.30";
    const uint ShtGnuVerneed = 0x6ffffffe;

    [Required]
    public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    public override bool Execute()
    {
        string libstdcxx = FindHostLibStdCxx();
        if (libstdcxx == null)
        {
            Log.LogMessage(MessageImportance.Low, "DistTrain native fix: no host libstdc++.so.6 found; nothing to do.");
            return true;
        }
        if (Contains(File.ReadAllBytes(libstdcxx), Encoding.ASCII.GetBytes(Wanted + "\0")))
        {
            Log.LogMessage(MessageImportance.Low, $"DistTrain native fix: {libstdcxx} provides {Wanted}; not needed.");
            return true;
        }
        foreach (ITaskItem item in Files)
        {
            string path = item.GetMetadata("FullPath");
            try
            {
                string outcome = PatchFile(path);
                Log.LogMessage(MessageImportance.Normal, $"DistTrain native fix: {path}: {outcome}");
            }
            catch (Exception e)
            {
                Log.LogError($"DistTrain native fix failed for {path}: {e.Message}");
                return false;
            }
        }
        return true;
    }

    static string FindHostLibStdCxx()
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };
        foreach (string c in candidates)
            if (File.Exists(c)) return c;
        return null;
    }

    /// <summary>Returns what was done. Writes through a temporary file so a hard link into the NuGet cache is never modified.</summary>
    static string PatchFile(string path)
    {
        byte[] elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("only 64-bit little-endian ELF is supported");

        ulong shoff = BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        bool changed = false;
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed) continue;
            int verneedOff = checked((int)BitConverter.ToUInt64(elf, sh + 0x18));
            int link = (int)BitConverter.ToUInt32(elf, sh + 0x28);
            int count = (int)BitConverter.ToUInt32(elf, sh + 0x2C);
            int strtab = checked((int)BitConverter.ToUInt64(elf, checked((int)shoff + link * shentsize) + 0x18));

            int vn = verneedOff;
            for (int n = 0; n < count; n++)
            {
                int auxCount = BitConverter.ToUInt16(elf, vn + 2);
                int aux = vn + (int)BitConverter.ToUInt32(elf, vn + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    int nameOff = strtab + (int)BitConverter.ToUInt32(elf, aux + 8);
                    if (ReadCString(elf, nameOff) == Wanted)
                    {
                        Encoding.ASCII.GetBytes(Replacement).CopyTo(elf, nameOff);
                        BitConverter.GetBytes(ElfHash(Replacement)).CopyTo(elf, aux);
                        changed = true;
                    }
                    aux += (int)BitConverter.ToUInt32(elf, aux + 12);
                }
                vn += (int)BitConverter.ToUInt32(elf, vn + 12);
            }
        }
        if (!changed) return "already loadable (no " + Wanted + " requirement)";

        string tmp = path + ".disttrain-tmp";
        File.WriteAllBytes(tmp, elf);
        File.Delete(path);   // unlink first: never write through a hard link into the NuGet cache
        File.Move(tmp, path);
        return $"rewrote {Wanted} -> {Replacement}";
    }

    static string ReadCString(byte[] b, int off)
    {
        int end = off;
        while (end < b.Length && b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, off, end - off);
    }

    // The System V ABI's ELF hash, as stored in vna_hash.
    static uint ElfHash(string name)
    {
        uint h = 0;
        foreach (char ch in name)
        {
            h = (h << 4) + ch;
            uint g = h & 0xf0000000;
            if (g != 0) h ^= g >> 24;
            h &= ~g;
        }
        return h;
    }

    static bool Contains(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && hay[i + j] == needle[j]) j++;
            if (j == needle.Length) return true;
        }
        return false;
    }
}
