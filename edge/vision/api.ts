// Contract of the face-access module towards other modules (doors' person commands,
// console). The vision module implements it and provides it as `services.get('faces')`.
export interface FaceRejection {
  /** Index of the photo/embedding in the request. */
  index: number;
  /** "no_face", "several_faces", "face_too_small", "too_blurred", "too_dark", "not_frontal", "not_an_image", "too_large", "bad_embedding" */
  code: string;
  message: string;
}

export interface FaceEnrolResult {
  accepted: number;
  rejected: FaceRejection[];
  /** Templates stored for the person after this call. */
  templates: number;
  /**
   * What the enrolment accepted but someone should look at: `close_to_existing` (the new
   * templates match another enrolled person at the door's threshold — a twin, a duplicate
   * record, or a resident the door will refuse as ambiguous: give one of them a second
   * factor), `few_photos` (fewer than 3 templates: recognition at the gate suffers).
   */
  warnings?: FaceWarning[];
}

export interface FaceWarning {
  code: 'close_to_existing' | 'few_photos';
  message: string;
  /** close_to_existing: the other person and the similarity (cosine; or Euclidean distance for dlib). */
  otherPersonId?: string;
  score?: number;
}

export interface FacesApi {
  /** Enrol photos (JPEG/PNG bytes) and/or ready embeddings for a person. */
  enrol(personId: string, input: { photos?: Buffer[]; embeddings?: number[][]; replace?: boolean }): Promise<FaceEnrolResult>;
  /** Remove every template (and any kept photo) of a person; returns how many were removed. */
  remove(personId: string): Promise<number>;
  /** Templates stored for one person, or in total. */
  count(personId?: string): number;
  /**
   * The resident's consent to improve their record from gate captures (learn.ts). Giving it
   * learns nothing by itself; withdrawing it deletes every learned template (returned).
   */
  setGateUpdates(personId: string, consent: boolean): Promise<{ gateUpdates: boolean; learnedRemoved: number }>;
  /** Whether the person consented, and how many of their templates were learned at the gate. */
  gateUpdates(personId: string): { gateUpdates: boolean; learned: number };
}

declare module '../module.js' {
  interface Services {
    faces: FacesApi;
  }
}

/** What the console shows of face access: state, and a camera snapshot with the detections. */
export interface VisionStatus {
  available: boolean;
  /** Why face access is not working, when it is not. */
  problem?: string;
  doorId?: string;
  camera?: { state: string; reason?: string; fps: number; frames: number; dropped: number; restarts: number; decodeErrors: number; lastFrameAt: number | null };
  templates: number;
  models?: { detector: string; recognizer: string; liveness: string[]; matchThreshold: number; metric: string; livenessThreshold?: number };
  counters: Record<string, number>;
  /** The face models' load: attempts so far, failed ones, and the last failure's reason. */
  modelLoad?: { state: 'loading' | 'ready' | 'failed' | 'slow'; attempts: number; failures: number; since: number; lastError?: string };
}

export interface VisionSnapshot {
  /** JPEG of the newest camera frame. */
  jpeg: Buffer;
  width: number;
  height: number;
  /** UTC ms of the frame. */
  at: number;
  /** Faces detected in the most recently analysed frame (box x, y, w, h in frame pixels). */
  faces: Array<{ box: [number, number, number, number]; score: number }>;
  /** UTC ms of the frame the faces belong to. */
  facesAt?: number;
}

export interface VisionApi {
  status(): VisionStatus;
  /** Newest frame as JPEG with the latest detections; undefined when no frame has arrived. */
  snapshot(): Promise<VisionSnapshot | undefined>;
}

declare module '../module.js' {
  interface Services {
    vision: VisionApi;
  }
}
