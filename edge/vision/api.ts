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
}

export interface FacesApi {
  /** Enrol photos (JPEG/PNG bytes) and/or ready embeddings for a person. */
  enrol(personId: string, input: { photos?: Buffer[]; embeddings?: number[][]; replace?: boolean }): Promise<FaceEnrolResult>;
  /** Remove every template (and any kept photo) of a person; returns how many were removed. */
  remove(personId: string): Promise<number>;
  /** Templates stored for one person, or in total. */
  count(personId?: string): number;
}

declare module '../module.js' {
  interface Services {
    faces: FacesApi;
  }
}
