/**
 * One stream of a container as vx describes it, read by the probe (`probe.ts`) and by the MP4
 * index (`mp4_index.ts`, `mp4_probe.ts`) alike.
 *
 * @module
 */

/** One stream of a container. */
export interface StreamInfo {
  index: number;
  type: string;
  codec: string;
  width?: number;
  height?: number;
  /**
   * The display rotation in degrees as ffprobe gives it (the display matrix's side data):
   * counter-clockwise, from -180 to 180, so a picture shown turned 90° clockwise says -90. From
   * the display matrix, or from the older `rotate` tag (clockwise) where there is none.
   */
  rotation?: number;
  frameRate?: number;
  timeBase: string;
  /** A picture attached to the file (cover art), not a video. */
  attachedPic?: boolean;
  /** Frames the decoder holds back to reorder B-frames (0: none). */
  reorderDepth?: number;
  /** The stream's first pts, in its time base; packets before it are cut by an edit list. */
  startPts?: number;
}
